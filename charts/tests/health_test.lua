-- Tests of the Argo CD health checks: lua5.4 charts/tests/health_test.lua (from the repository
-- root or from charts/tests). Runs each script the way Argo CD does (a chunk with `obj` in scope
-- that returns { status, message }) and checks the copy embedded in the argocd-cm example.

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local health_dir = here .. "/../memoryc/files/health/"
local example = here .. "/../examples/argocd-cm-health.yaml"

local function read(path)
  local file = assert(io.open(path, "r"))
  local text = file:read("a")
  file:close()
  return text
end

local function health(script, object)
  local env = setmetatable({ obj = object }, { __index = _G })
  local chunk = assert(load(read(health_dir .. script), script, "t", env))
  return chunk()
end

local passed, failed = 0, 0
local function check(name, script, object, status, message_part)
  local ok, result = pcall(health, script, object)
  if ok and result.status == status and (message_part == nil or string.find(result.message, message_part, 1, true)) then
    passed = passed + 1
  else
    failed = failed + 1
    print(string.format("FAILED %s: got %s", name, ok and (result.status .. " / " .. tostring(result.message)) or tostring(result)))
  end
end

local function condition(type_, status, reason, message)
  return { type = type_, status = status, reason = reason, message = message }
end

local function tenant(phase, ready, generation, observed)
  return {
    metadata = { name = "acme", generation = generation or 1 },
    status = { phase = phase, observedGeneration = observed or 1, conditions = { ready } },
  }
end

-- MemoryTenant
check("tenant without status", "memorytenant.lua", { metadata = { generation = 1 } }, "Progressing", "Waiting")
check("ready tenant", "memorytenant.lua",
  tenant("Ready", condition("Ready", "True", "Provisioned", "schema tenant_acme, collection c")), "Healthy", "schema tenant_acme")
check("failed tenant", "memorytenant.lua",
  tenant("Failed", condition("Ready", "False", "VectorStoreFailed", "Milvus: refused; check that Milvus is reachable")),
  "Degraded", "check that Milvus is reachable")
check("provisioning tenant", "memorytenant.lua",
  tenant("Provisioning", condition("Ready", "False", "Starting", "0/2 replicas available")), "Progressing", "0/2 replicas")
check("paused tenant", "memorytenant.lua",
  tenant("Paused", condition("Ready", "True", "Provisioned", "ok")), "Suspended", "paused")
check("stale status is not trusted", "memorytenant.lua",
  tenant("Ready", condition("Ready", "True", "Provisioned", "ok"), 3, 2), "Progressing", "generation 3")
check("ready phase with a false condition", "memorytenant.lua",
  tenant("Ready", condition("Ready", "False", "X", "odd")), "Progressing", nil)

-- IntegrationBinding
local function binding(phase, connected)
  return { metadata = { generation = 1 }, status = { phase = phase, observedGeneration = 1, conditions = { connected } } }
end
check("connected binding", "integrationbinding.lua",
  binding("Ready", condition("Registered", "True", "InRegistry", "GitHubProjects integration registered")), "Healthy", "registered")
check("binding waiting for its tenant", "integrationbinding.lua",
  binding("Pending", condition("Registered", "False", "TenantNotFound", "MemoryTenant acme does not exist")), "Progressing", "does not exist")
check("binding with a wrong Secret", "integrationbinding.lua",
  binding("Pending", condition("Registered", "False", "SecretKeyMissing", "Secret gh has no non-empty key token")), "Degraded", "key token")
check("binding whose registration failed", "integrationbinding.lua",
  binding("Failed", condition("Registered", "False", "RegistrationFailed", "PostgreSQL down")), "Degraded", "PostgreSQL")
check("paused binding", "integrationbinding.lua",
  binding("Paused", condition("ReconciliationPaused", "True", "Paused", "paused")), "Suspended", nil)

-- The argocd-cm example embeds exactly these scripts.
local config = read(example)
for key, script in pairs({ ["memoryc.dev_MemoryTenant"] = "memorytenant.lua", ["memoryc.dev_IntegrationBinding"] = "integrationbinding.lua" }) do
  local marker = "resource.customizations.health." .. key .. ": |\n"
  local start = string.find(config, marker, 1, true)
  local embedded = {}
  if start ~= nil then
    for line in string.gmatch(string.sub(config, start + #marker), "([^\n]*)\n") do
      if line ~= "" and string.sub(line, 1, 4) ~= "    " then
        break
      end
      table.insert(embedded, string.sub(line, 5))
    end
  end
  if table.concat(embedded, "\n") .. "\n" == read(health_dir .. script) then
    passed = passed + 1
  else
    failed = failed + 1
    print("FAILED argocd-cm example: " .. key .. " differs from " .. script)
  end
end

print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0)
