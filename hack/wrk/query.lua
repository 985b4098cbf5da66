-- Query of one random preloaded partition (up to 10 items). See dynamodb.lua.
TK_OP = "query"
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "dynamodb.lua")
