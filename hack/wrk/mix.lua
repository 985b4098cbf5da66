-- 50/50 PutItem (fresh keys) and GetItem (preloaded keys). See dynamodb.lua.
TK_OP = "mix"
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "dynamodb.lua")
