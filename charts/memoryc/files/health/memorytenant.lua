-- Argo CD health of a MemoryTenant, from the status the operator writes.
local hs = { status = "Progressing", message = "Waiting for the operator to report" }
if obj.status == nil then
  return hs
end
local generation = obj.metadata and obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and observed ~= nil and observed < generation then
  hs.message = "Waiting for the operator to act on generation " .. generation
  return hs
end
local ready = nil
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Ready" then
      ready = condition
    end
  end
end
local phase = obj.status.phase
local message = (ready and ready.message) or ""
if phase == "Paused" then
  hs.status = "Suspended"
  hs.message = "spec.paused is true: the operator changes nothing"
elseif phase == "Ready" and ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = message
elseif phase ~= nil then
  hs.message = phase .. ": " .. message
end
return hs
