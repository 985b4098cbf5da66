-- Argo CD health of a tablekeeper.io object, from the status the operator
-- writes: observedGeneration and the Ready, Progressing and Degraded conditions.
local hs = {}
if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
local conditions = {}
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    conditions[condition.type] = condition
  end
end
local function holds(kind)
  return conditions[kind] ~= nil and conditions[kind].status == "True"
end
local function say(kind, fallback)
  local condition = conditions[kind]
  if condition == nil then
    return fallback
  end
  if condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  if condition.reason ~= nil and condition.reason ~= "" then
    return condition.reason
  end
  return fallback
end
if holds("Degraded") then
  hs.status = "Degraded"
  hs.message = say("Degraded", "Degraded")
  return hs
end
if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Suspended: no new backups are scheduled"
  return hs
end
if holds("Progressing") then
  hs.status = "Progressing"
  hs.message = say("Progressing", "Progressing")
  return hs
end
if holds("Ready") then
  hs.status = "Healthy"
  hs.message = say("Ready", "Ready")
  return hs
end
if conditions["Ready"] ~= nil and conditions["Ready"].status == "False" then
  hs.status = "Degraded"
  hs.message = say("Ready", "Not ready")
  return hs
end
hs.status = "Progressing"
hs.message = "Waiting for the Ready condition"
return hs
