-- GetItem of uniformly random preloaded keys. See dynamodb.lua.
TK_OP = "get"
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "dynamodb.lua")
