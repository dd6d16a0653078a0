"""Every Lua script of the router, one per state transition.

Calling convention shared by all scripts (the PRELUDE implements it):
  KEYS[1] seen marker of the event (or Keys.none), KEYS[2] decisions stream, KEYS[3] stats hash,
  script keys from KEYS[4], and LAST the history list of each decision, in decision order.
  ARGV[1] event id ('' = no idempotency check), ARGV[2] JSON array of decision JSON strings,
  ARGV[3] seen ttl s, ARGV[4] the content digest of the stream event this commit completes ('' = none;
  '*' = content unknown), ARGV[5] the length caps as a JSON object (RoutingStore.limits: decisions stream,
  decision history per contact, audit stream, dead-letter stream, waits log, ended-contacts log), script
  arguments from ARGV[6].
The seen marker keeps the digest: an event id seen before with the same content (or content unknown on
either side) answers 'dup'; with other content 'err' 'conflicting_duplicate' and the digest it had. A stream
event with no marker whose commit carries decisions answers 'dup' too when a decision of that event is among
the last DECIDED_LOOKBACK of its contact's history (the marker was lost, the decision was not).
Every script returns a table whose first element is 'ok', 'dup' (event already applied), 'conflict'
(state moved since it was read; re-read and retry) or 'err' with a reason code second.
All writes happen after all checks, so a refused transition changes nothing.
"""

from __future__ import annotations

# how many of a contact's latest decisions (its history list) the prelude searches for an event whose seen
# marker is gone
DECIDED_LOOKBACK = 20

PRELUDE = r"""
local DECIDED_LOOKBACK = @DECIDED_LOOKBACK@
local EVENT_ID = ARGV[1]
local DECISIONS = cjson.decode(ARGV[2])
local DIGEST = ARGV[4]
local LIMITS = cjson.decode(ARGV[5])
if EVENT_ID ~= '' then
  local seen = redis.call('GET', KEYS[1])
  if seen then
    -- '1': a marker written before digests were kept; '*' (or ''): content unknown
    local unknown = seen == '1' or seen == '*' or DIGEST == '' or DIGEST == '*'
    if unknown or seen == DIGEST then return {'dup'} end
    return {'err', 'conflicting_duplicate', seen}
  end
  -- no marker, yet a decision of this event in its contact's recent history: the marker went (its TTL,
  -- eviction under a volatile-* maxmemory policy) while the decision stayed. Applied already: no second
  -- decision; the marker is written again
  if DIGEST ~= '' and #DECISIONS > 0 then
    local needle = '"event_id":' .. cjson.encode(EVENT_ID) .. ','
    for i = 1, #DECISIONS do
      for _, raw in ipairs(redis.call('LRANGE', KEYS[#KEYS - #DECISIONS + i], -DECIDED_LOOKBACK, -1)) do
        if string.find(raw, needle, 1, true) then
          redis.call('SET', KEYS[1], DIGEST, 'EX', ARGV[3])
          return {'dup'}
        end
      end
    end
  end
end
local function finish()
  local nd = #DECISIONS
  for i, raw in ipairs(DECISIONS) do
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', LIMITS.decisions, '*', 'decision', raw)
    local hk = KEYS[#KEYS - nd + i]
    redis.call('RPUSH', hk, raw)
    redis.call('LTRIM', hk, -LIMITS.history, -1)
  end
  if nd > 0 then redis.call('HINCRBY', KEYS[3], 'decisions', nd) end
  if EVENT_ID ~= '' then redis.call('SET', KEYS[1], DIGEST ~= '' and DIGEST or '*', 'EX', ARGV[3]) end
  if DIGEST ~= '' then redis.call('HINCRBY', KEYS[3], 'processed', 1) end
end
local function num(v) return tonumber(v) or 0 end
-- a running mean and variance of one measure in the hash KEYS[ki] (fields NAME, NAME:var, NAME:n): the mean
-- over the first 1 / SERVICE_WEIGHT samples, then exponentially weighted, so it follows the day
local SERVICE_WEIGHT = 0.02
local function ewma(ki, name, x)
  local got = redis.call('HMGET', KEYS[ki], name, name .. ':var', name .. ':n')
  local m, v, n = num(got[1]), num(got[2]), num(got[3])
  local w = math.max(1 / (n + 1), SERVICE_WEIGHT)
  local d = x - m
  redis.call('HSET', KEYS[ki], name, tostring(m + w * d), name .. ':var', tostring((1 - w) * (v + w * d * d)),
    name .. ':n', n + 1)
end
-- the field/value pairs of a decoded JSON object, then the extra pairs (which win a name clash, as a later
-- HSET would), for one HSET instead of one per field
local function flat_pairs(fields, ...)
  local flat = {}
  for k, v in pairs(fields) do flat[#flat + 1] = k; flat[#flat + 1] = v end
  for _, x in ipairs({...}) do flat[#flat + 1] = x end
  return flat
end
""".replace("@DECIDED_LOOKBACK@", str(DECIDED_LOOKBACK))

# Contact state update (started, message, human request, re-placement). Optimistic: refused when the
# contact's version moved since the worker read it. A contact flagged a moment of truth for the first time
# (or again after a restart) counts once in the stats hash ('mot_contacts': the dashboard's MoTs per interval).
# KEYS: 4 contact, 5 queue to leave, 6 queue to join, 7 customer (Keys.none: not touched), 8 open contacts
# ARGV: 6 expected version, 7 fields JSON object, 8 '1' to leave queue, 9 score to join ('' none), 10 contact id,
#       11 customer's last contact ms ('' none), 12 customer ttl s
APPLY_CONTACT = r"""
local old = redis.call('HMGET', KEYS[4], 'version', 'mot', 'status')
local ver = old[1]
if not ver then ver = '0' end
if ver ~= ARGV[6] then return {'conflict', ver} end
local newver = num(ver) + 1
local fields = cjson.decode(ARGV[7])
redis.call('HSET', KEYS[4], unpack(flat_pairs(fields, 'version', newver)))
if fields['mot'] == '1' and (old[2] ~= '1' or old[3] == 'ended') then
  redis.call('HINCRBY', KEYS[3], 'mot_contacts', 1)
end
-- a transcript line after the end leaves the contact ended: only live contacts are open
if redis.call('HGET', KEYS[4], 'status') ~= 'ended' then redis.call('SADD', KEYS[8], ARGV[10]) end
if ARGV[8] == '1' then redis.call('ZREM', KEYS[5], ARGV[10]) end
if ARGV[9] ~= '' then redis.call('ZADD', KEYS[6], ARGV[9], ARGV[10]) end
if ARGV[11] ~= '' then
  redis.call('HSET', KEYS[7], 'last_contact_ms', ARGV[11])
  redis.call('EXPIRE', KEYS[7], ARGV[12])
end
finish()
return {'ok', tostring(newver)}
"""

# Reserve an agent for a contact: capacity checked and taken in one step.
# KEYS: 4 agent, 5 contact, 6 offer, 7 offers by deadline, 8 queue, 9 contact's declines (agent -> ms),
#       10 agent's pending offers, 11 agent's recent MoT offers, 12 domain's recent MoT offers
# ARGV: 6 offer id, 7 agent id, 8 contact id, 9 channel, 10 now ms, 11 deadline ms, 12 '1' if MoT,
#       13 expected contact version ('' any), 14 queue name, 15 fairness window ms, 16 offer key ttl ms,
#       17 decline memory ms, 18 '1' to offer although the agent declined within the memory (every agent
#       who could take the contact has: "all_declined"). That verdict rests on the declines the worker
#       read; every decline bumps the contact's version, so the version check (13) covers it.
OFFER = r"""
if redis.call('HGET', KEYS[4], 'status') ~= 'available' then return {'err', 'agent_unavailable'} end
local ch = ARGV[9]
local cap = num(redis.call('HGET', KEYS[4], 'cap:' .. ch))
local load = num(redis.call('HGET', KEYS[4], 'load:' .. ch))
if load >= cap then return {'err', 'no_capacity'} end
local declined_ms = redis.call('ZSCORE', KEYS[9], ARGV[7])
if declined_ms and num(ARGV[10]) - num(declined_ms) < num(ARGV[17]) and ARGV[18] ~= '1' then
  return {'err', 'declined_before'}
end
local st = redis.call('HGET', KEYS[5], 'status')
if not st then return {'err', 'no_contact'} end
if st == 'offered' or st == 'assigned' or st == 'ended' then return {'err', 'contact_taken'} end
local ver = redis.call('HGET', KEYS[5], 'version') or '0'
if ARGV[13] ~= '' and ver ~= ARGV[13] then return {'conflict', ver} end
redis.call('HINCRBY', KEYS[4], 'load:' .. ch, 1)
redis.call('HSET', KEYS[4], 'last_assigned_ms', ARGV[10])
-- the slot is busy from now: 'busy:<contact>' = channel|since ms|mot, for the wait forecast's residuals
redis.call('HSET', KEYS[4], 'busy:' .. ARGV[8], ch .. '|' .. ARGV[10] .. '|' .. (ARGV[12] == '1' and '1' or '0'))
redis.call('HSET', KEYS[6], 'offer_id', ARGV[6], 'agent_id', ARGV[7], 'contact_id', ARGV[8], 'channel', ch,
  'status', 'pending', 'created_ms', ARGV[10], 'deadline_ms', ARGV[11], 'queue', ARGV[14], 'mot', ARGV[12])
redis.call('PEXPIRE', KEYS[6], ARGV[16])
redis.call('ZADD', KEYS[7], ARGV[11], ARGV[6])
redis.call('SADD', KEYS[10], ARGV[6])
redis.call('ZREM', KEYS[8], ARGV[8])
redis.call('HSET', KEYS[5], 'status', 'offered', 'offer_id', ARGV[6], 'agent_id', ARGV[7], 'queue', ARGV[14],
  'version', num(ver) + 1)
if ARGV[12] == '1' then
  local floor = num(ARGV[10]) - num(ARGV[15])
  redis.call('ZADD', KEYS[11], ARGV[10], ARGV[6])
  redis.call('ZREMRANGEBYSCORE', KEYS[11], '-inf', floor)
  redis.call('ZADD', KEYS[12], ARGV[10], ARGV[6])
  redis.call('ZREMRANGEBYSCORE', KEYS[12], '-inf', floor)
end
finish()
return {'ok'}
"""

# Resolve a pending offer: accepted, declined, timeout or revoked (agent left). An acceptance also
# measures: the answer time (service hash), the wait the customer lived, against the wait announced to it
# if any (the waits log, and the ewt_* counters of the stats hash), and stamps the contact 'assigned_ms'
# for the handle time that RELEASE measures. Any other answer hands the contact back to the queue: one more
# hand-off on the contact ('handoffs', read when it ends).
# KEYS: 4 offer, 5 offers by deadline, 6 contact, 7 agent, 8 contact's declines (agent -> ms), 9 queue,
#       10 agent's pending offers, 11 queue's served set, 12 service hash, 13 waits log, 14 the model's
#       bands checked (router/domain/wait_band.py)
# ARGV: 6 offer id, 7 mode, 8 now ms, 9 queue score on requeue, 10 served window ms, 11 contact id,
#       12 agent id, 13 decline memory ms
RESOLVE_OFFER = r"""
local st = redis.call('HGET', KEYS[4], 'status')
if st ~= 'pending' then return {'err', 'offer_not_pending', st or 'missing'} end
local mode = ARGV[7]
if mode == 'timeout' and num(redis.call('HGET', KEYS[4], 'deadline_ms')) > num(ARGV[8]) then
  return {'err', 'not_due'}
end
redis.call('HSET', KEYS[4], 'status', mode, 'resolved_ms', ARGV[8])
redis.call('ZREM', KEYS[5], ARGV[6])
redis.call('SREM', KEYS[10], ARGV[6])
local ver = num(redis.call('HGET', KEYS[6], 'version')) + 1
if mode == 'accepted' then
  local now = num(ARGV[8])
  local c = redis.call('HMGET', KEYS[6], 'enqueued_ms', 'announced_ms', 'ewt_s', 'ewt_low_s', 'ewt_high_s',
    'mot', 'channel', 'ewt_checked', 'ewt_model_low_s', 'ewt_model_high_s')
  redis.call('HSET', KEYS[6], 'status', 'assigned', 'version', ver, 'assigned_ms', ARGV[8])
  redis.call('HSET', KEYS[7], 'busy:' .. ARGV[11], (c[7] or '') .. '|' .. ARGV[8] .. '|' .. (c[6] == '1' and '1' or '0'))
  redis.call('ZADD', KEYS[11], ARGV[8], ARGV[6])
  redis.call('ZREMRANGEBYSCORE', KEYS[11], '-inf', now - num(ARGV[10]))
  local created = num(redis.call('HGET', KEYS[4], 'created_ms'))
  if created > 0 and now >= created then ewma(12, 'answer_s', (now - created) / 1000) end
  local entry = {t_ms = now, queue = redis.call('HGET', KEYS[4], 'queue') or '', mot = c[6] == '1',
    channel = c[7] or ''}
  -- one that waited and was served: the share of waiting contacts that leave unserved (RELEASE) falls
  if c[2] and entry.queue ~= '' then ewma(12, 'left:' .. entry.queue, 0) end
  if c[1] then entry['waited_s'] = math.max(0, now - num(c[1])) / 1000 end
  if c[2] and c[3] and c[8] ~= '1' then
    local actual = math.max(0, now - num(c[2])) / 1000
    local ewt, low, high = num(c[3]), num(c[4]), num(c[5])
    entry['announced_s'] = ewt; entry['low_s'] = low; entry['high_s'] = high; entry['actual_s'] = actual
    redis.call('HINCRBY', KEYS[3], 'ewt_checked', 1)
    redis.call('HINCRBY', KEYS[3], 'ewt_abs_error_ms', math.floor(math.abs(actual - ewt) * 1000 + 0.5))
    redis.call('HINCRBY', KEYS[3], 'ewt_actual_ms', math.floor(actual * 1000 + 0.5))
    if low <= actual and actual <= high then redis.call('HINCRBY', KEYS[3], 'ewt_inside_band', 1) end
    if c[9] and c[10] then
      redis.call('LPUSH', KEYS[14], c[9] .. '|' .. c[10] .. '|' .. string.format('%.1f', actual))
      redis.call('LTRIM', KEYS[14], 0, LIMITS.ewt_bands - 1)
    end
    redis.call('HSET', KEYS[6], 'ewt_checked', '1')
  end
  redis.call('LPUSH', KEYS[13], cjson.encode(entry))
  redis.call('LTRIM', KEYS[13], 0, LIMITS.waits - 1)
else
  local ch = redis.call('HGET', KEYS[4], 'channel')
  if num(redis.call('HGET', KEYS[7], 'load:' .. ch)) > 0 then redis.call('HINCRBY', KEYS[7], 'load:' .. ch, -1) end
  redis.call('HDEL', KEYS[7], 'busy:' .. ARGV[11])
  if mode ~= 'revoked' then
    -- remembered per agent for the decline memory: older declines are pruned here, and the key expires
    -- with its newest one, so a contact nobody takes is offered again and nothing is kept forever
    redis.call('ZADD', KEYS[8], ARGV[8], ARGV[12])
    redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', num(ARGV[8]) - num(ARGV[13]))
    redis.call('PEXPIRE', KEYS[8], math.max(1, num(ARGV[13])))
  end
  redis.call('HSET', KEYS[6], 'status', 'queued', 'offer_id', '', 'agent_id', '', 'version', ver)
  redis.call('HINCRBY', KEYS[6], 'handoffs', 1)
  redis.call('ZADD', KEYS[9], ARGV[9], ARGV[11])
end
finish()
return {'ok', mode}
"""

# Work on a contact is over (work.completed or contact.ended): free what it held, whatever that was. Work
# an agent had accepted measures the channel's handle time (service hash, 'handle_s:<channel>'); a contact
# that had been told a wait and ends before an agent accepted it left its queue unserved ('left:<queue>',
# which RESOLVE_OFFER lowers for those served). A contact that ends lands in the ended-contacts log: its
# class, the status it ended in (queued or offered: nobody took it), its hand-offs, its customer and that
# customer's previous contact (router/domain/kpis.py).
# KEYS: 4 contact, 5 agent (Keys.none when the contact holds none), 6 customer, 7 queue, 8 offer,
#       9 offers by deadline, 10 agent's pending offers, 11 open contacts, 12 service hash, 13 ended log
# ARGV: 6 contact id, 7 expected contact version, 8 now ms, 9 fields JSON, 10 end contact ('1'/'0'),
#       11 customer ttl s
RELEASE = r"""
local st = redis.call('HGET', KEYS[4], 'status')
if not st then return {'err', 'no_contact'} end
if (redis.call('HGET', KEYS[4], 'version') or '0') ~= ARGV[7] then return {'conflict'} end
local agent = redis.call('HGET', KEYS[4], 'agent_id') or ''
local freed = ''
if (st == 'offered' or st == 'assigned') and agent ~= '' then
  local ch = redis.call('HGET', KEYS[4], 'channel')
  if num(redis.call('HGET', KEYS[5], 'load:' .. ch)) > 0 then redis.call('HINCRBY', KEYS[5], 'load:' .. ch, -1) end
  redis.call('HDEL', KEYS[5], 'busy:' .. ARGV[6])
  if st == 'offered' then
    local oid = redis.call('HGET', KEYS[4], 'offer_id') or ''
    redis.call('HSET', KEYS[8], 'status', 'revoked', 'resolved_ms', ARGV[8])
    redis.call('ZREM', KEYS[9], oid)
    redis.call('SREM', KEYS[10], oid)
  end
  redis.call('HSET', KEYS[6], 'last_agent_id', agent, 'last_agent_ms', ARGV[8])
  redis.call('EXPIRE', KEYS[6], ARGV[11])
  freed = agent
  local assigned = num(redis.call('HGET', KEYS[4], 'assigned_ms'))
  if st == 'assigned' and assigned > 0 and num(ARGV[8]) >= assigned then
    ewma(12, 'handle_s:' .. ch, (num(ARGV[8]) - assigned) / 1000)
    -- and per kind: a moment of truth takes longer than a routine contact, and the forecast knows which
    -- each busy slot holds
    local kind = redis.call('HGET', KEYS[4], 'mot') == '1' and 'mot' or 'routine'
    ewma(12, 'handle_s:' .. ch .. ':' .. kind, (num(ARGV[8]) - assigned) / 1000)
  end
elseif st == 'queued' then
  redis.call('ZREM', KEYS[7], ARGV[6])
end
if ARGV[10] == '1' and (st == 'queued' or st == 'offered') then
  local q = redis.call('HMGET', KEYS[4], 'queue', 'announced_ms')
  if q[1] and q[1] ~= '' and q[2] then ewma(12, 'left:' .. q[1], 1) end
end
local fields = cjson.decode(ARGV[9])
local ver = num(ARGV[7]) + 1
if ARGV[10] == '1' then
  -- the end overrides any same-named field of the event's own
  fields['status'] = 'ended'; fields['agent_id'] = ''; fields['offer_id'] = ''; fields['ended_ms'] = ARGV[8]
  redis.call('SREM', KEYS[11], ARGV[6])
  local was = redis.call('HMGET', KEYS[4], 'mot', 'created_ms', 'handoffs', 'customer_id', 'prev_contact_ms')
  local entry = {t_ms = num(ARGV[8]), started_ms = num(was[2]), mot = was[1] == '1', was = st,
    handoffs = num(was[3]), customer = was[4] or ''}
  if num(was[5]) > 0 then entry['prev_ms'] = num(was[5]) end
  redis.call('LPUSH', KEYS[13], cjson.encode(entry))
  redis.call('LTRIM', KEYS[13], 0, LIMITS.ended - 1)
end
redis.call('HSET', KEYS[4], unpack(flat_pairs(fields, 'version', ver)))
finish()
return {'ok', st, freed}
"""

# Agent status change; going away or offline revokes the agent's pending offers and requeues their contacts.
# The end of a spell away measures how long it lasted (the away spells list, for the wait forecast).
# KEYS: 4 agent, 5 agent's pending offers, 6 offers by deadline, 7 away spells,
#       then per offer: offer, contact, queue
# ARGV: 6 status, 7 now ms, 8 number of offers n, then per offer: offer id, contact id, queue score
AGENT_STATUS = r"""
if redis.call('EXISTS', KEYS[4]) == 0 then return {'err', 'no_agent'} end
local n = num(ARGV[8])
if redis.call('SCARD', KEYS[5]) ~= n then return {'conflict'} end
for i = 0, n - 1 do
  if redis.call('SISMEMBER', KEYS[5], ARGV[9 + i * 3]) == 0 then return {'conflict'} end
end
local status = ARGV[6]
local was = redis.call('HMGET', KEYS[4], 'status', 'status_ms')
local since = num(was[2])
if was[1] == 'away' and status ~= 'away' and since > 0 and num(ARGV[7]) >= since then
  redis.call('LPUSH', KEYS[7], tostring((num(ARGV[7]) - since) / 1000))
  redis.call('LTRIM', KEYS[7], 0, LIMITS.away_spells - 1)
end
if was[1] ~= status or since == 0 then
  redis.call('HSET', KEYS[4], 'status', status, 'status_ms', ARGV[7])
end
if status ~= 'available' then
  for i = 0, n - 1 do
    local okey, ckey, qkey = KEYS[8 + i * 3], KEYS[9 + i * 3], KEYS[10 + i * 3]
    local oid, cid, score = ARGV[9 + i * 3], ARGV[10 + i * 3], ARGV[11 + i * 3]
    if redis.call('HGET', okey, 'status') == 'pending' then
      local ch = redis.call('HGET', okey, 'channel')
      redis.call('HSET', okey, 'status', 'revoked', 'resolved_ms', ARGV[7])
      redis.call('ZREM', KEYS[6], oid)
      if num(redis.call('HGET', KEYS[4], 'load:' .. ch)) > 0 then redis.call('HINCRBY', KEYS[4], 'load:' .. ch, -1) end
      redis.call('HDEL', KEYS[4], 'busy:' .. cid)
      local ver = num(redis.call('HGET', ckey, 'version')) + 1
      redis.call('HSET', ckey, 'status', 'queued', 'offer_id', '', 'agent_id', '', 'version', ver)
      redis.call('HINCRBY', ckey, 'handoffs', 1)
      redis.call('ZADD', qkey, score, cid)
    end
    redis.call('SREM', KEYS[5], oid)
  end
end
finish()
return {'ok'}
"""

# Create or edit an agent's profile (not its load). Optimistic on the profile version (ETag / If-Match).
# KEYS: 4 agent, 5 agents set, 6 audit stream
# ARGV: 6 agent id, 7 expected version ('' any, '0' must not exist), 8 fields JSON, 9 audit entry JSON ('' none)
UPSERT_AGENT = r"""
local ver = redis.call('HGET', KEYS[4], 'version') or '0'
if ARGV[7] ~= '' and ver ~= ARGV[7] then return {'conflict', ver} end
local fields = cjson.decode(ARGV[8])
if not redis.call('HGET', KEYS[4], 'status') and fields['status'] == nil then fields['status'] = 'offline' end
local newver = num(ver) + 1
redis.call('HSET', KEYS[4], unpack(flat_pairs(fields, 'version', newver, 'agent_id', ARGV[6])))
redis.call('SADD', KEYS[5], ARGV[6])
if ARGV[9] ~= '' then redis.call('XADD', KEYS[6], 'MAXLEN', '~', LIMITS.audit, '*', 'entry', ARGV[9]) end
finish()
return {'ok', tostring(newver)}
"""

# Dead-letter an entry and acknowledge it in one step, so it is never both lost and unrecorded.
# KEYS: 4 dead-letter stream, 5 events stream
# ARGV: 6 group, 7 stream entry id, 8.. field/value pairs for the dead-letter entry
DEADLETTER = r"""
local entry = {}
for i = 8, #ARGV do entry[#entry + 1] = ARGV[i] end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', LIMITS.deadletter, '*', unpack(entry))
redis.call('XACK', KEYS[5], ARGV[6], ARGV[7])
redis.call('HINCRBY', KEYS[3], 'dead_letters', 1)
finish()
return {'ok'}
"""

# Mark an event applied when it changes nothing (a late accept, an agent message): still exactly once.
MARK = r"""
finish()
return {'ok'}
"""

# Delete a consumer of the events group whose worker is gone: only with nothing pending for it (checked in
# the same step, so no entry it reads meanwhile can leave the pending list with it) and no heartbeat since
# the cut-off. Not a transition: registered without the prelude.
# KEYS: 1 events stream, 2 heartbeats. ARGV: 1 group, 2 consumer, 3 heartbeats before this ms are stale
PRUNE_CONSUMER = r"""
local beat = redis.call('ZSCORE', KEYS[2], ARGV[2])
if beat and tonumber(beat) >= tonumber(ARGV[3]) then return 0 end
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
"""

# A sample of the floor for the dashboard's series, at most one per step whichever worker sends it: the queue
# depths and the count of contacts flagged moments of truth so far (stats 'mot_contacts'). A sample is skipped
# while the newest one is less than a step away (either way: a clock set back still samples after a step).
# Not a transition: registered without the prelude.
# KEYS: 1 floor samples list, 2 stats hash, 3.. one queue each. ARGV: 1 now ms, 2 step ms, 3 samples kept,
#       4.. the queue names, in KEYS order
SAMPLE_FLOOR = r"""
local now, step = tonumber(ARGV[1]), tonumber(ARGV[2])
local newest = redis.call('LINDEX', KEYS[1], 0)
if newest then
  local ok, prev = pcall(cjson.decode, newest)
  if ok and type(prev) == 'table' and tonumber(prev.t_ms) and math.abs(now - tonumber(prev.t_ms)) < step then
    return 0
  end
end
local depth = {}
for i = 3, #KEYS do depth[ARGV[i + 1]] = redis.call('ZCARD', KEYS[i]) end
local mot = tonumber(redis.call('HGET', KEYS[2], 'mot_contacts')) or 0
redis.call('LPUSH', KEYS[1], cjson.encode({t_ms = now, depth = depth, mot = mot}))
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[3]) - 1)
return 1
"""

ALL: dict[str, str] = {
    "mark": MARK,
    "apply_contact": APPLY_CONTACT,
    "offer": OFFER,
    "resolve_offer": RESOLVE_OFFER,
    "release": RELEASE,
    "agent_status": AGENT_STATUS,
    "upsert_agent": UPSERT_AGENT,
    "deadletter": DEADLETTER,
}
