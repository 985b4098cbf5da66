-- PutItem of ~200-byte items, a fresh key per request. See dynamodb.lua.
TK_OP = "put"
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "dynamodb.lua")
