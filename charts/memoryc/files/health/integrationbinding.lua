-- Argo CD health of an IntegrationBinding. A binding waiting for something that may still be
-- synced (its tenant, its Secret) is Progressing; one that cannot work as written is Degraded.
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
local registered = nil
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Registered" then
      registered = condition
    end
  end
end
local phase = obj.status.phase
local reason = (registered and registered.reason) or ""
local message = (registered and registered.message) or ""
local unfixable = { WrongNamespace = true, SecretKeyMissing = true, InvalidSettings = true }
if phase == "Paused" then
  hs.status = "Suspended"
  hs.message = "spec.paused is true: the operator changes nothing"
elseif phase == "Ready" and registered ~= nil and registered.status == "True" then
  hs.status = "Healthy"
  hs.message = message
elseif phase == "Failed" or unfixable[reason] then
  hs.status = "Degraded"
  hs.message = message
else
  hs.message = message
end
return hs
