-- Store one watermark profile unless its owner holds the most allowed already.
-- KEYS[1] the owner's sorted set of profile ids (score: created_at)
-- KEYS[2] the profile's hash
-- ARGV[1] most profiles per owner, ARGV[2] profile id, ARGV[3] created_at,
-- ARGV[4..] field, value pairs of the hash.
-- Returns 1 when stored, 0 when the owner is at the cap.
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
local fields = {}
for at = 4, #ARGV do
  fields[#fields + 1] = ARGV[at]
end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
return 1
