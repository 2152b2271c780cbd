// Checks the GitHub GraphQL documents: every operation in platform/graphql/github/*.graphql must
// validate against the vendored schema (plus GitHub's own rule that a connection takes `first` or
// `last`, 1 to 100), and every response fixture in platform/tests/fixtures/github must have the shape
// of the operation it answers (a document may hold several operations; a fixture names the one it
// answers, as a request's operationName does): exactly the selected keys, no null where the schema
// forbids one, leaf values of the right kind, unions resolved by `__typename`, and each error's path
// and locations pointing at a field the operation selects.
//
// Run by scripts/check-graphql, which installs graphql-js and names its folder in GRAPHQL_JS_DIR.
// Exits 1 when anything fails.
import { readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(join(process.env.GRAPHQL_JS_DIR ?? ".", "index.js"));
const {
  GraphQLError,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  Kind,
  TypeNameMetaFieldDef,
  buildASTSchema,
  getDirectiveValues,
  getNamedType,
  isAbstractType,
  isEnumType,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
  parse,
  specifiedRules,
  typeFromAST,
  validate,
} = require("graphql");
const { getVariableValues } = require("graphql/execution/values");
const { validateSDL } = require("graphql/validation/validate");

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const operationsDir = join(root, "platform/graphql/github");
const fixturesDir = join(root, "platform/tests/fixtures/github");

// The request each fixture answers: the document (`operation`, a file in platform/graphql/github),
// the operation in it (`operationName`, as the request names it; when left out, the file's first
// operation) and the variables. A fixture must be listed here; `rest` marks a body that is not a
// GraphQL response (GitHub's secondary rate limit answers with a REST-style error).
const FIXTURES = {
  "project_items_page1.json": {
    operation: "project_items.graphql",
    operationName: "ProjectItems",
    variables: { login: "acme-robotics", number: 7, cursor: null },
  },
  "project_items_page2.json": {
    operation: "project_items.graphql",
    operationName: "ProjectItems",
    variables: { login: "acme-robotics", number: 7, cursor: "Mw" },
  },
  "errors_not_found.json": {
    operation: "project_items.graphql",
    operationName: "ProjectItems",
    variables: { login: "acme-robotics", number: 99, cursor: null },
  },
  "project_item_node.json": {
    operation: "project_items.graphql",
    operationName: "ProjectItem",
    variables: { id: "PVTI_lADOBdk1c84AtQ9xzgVq3aE" },
  },
  "project_item_missing.json": {
    operation: "project_items.graphql",
    operationName: "ProjectItem",
    variables: { id: "PVTI_lADOBdk1c84AtQ9xzgVq2Jd" },
  },
  "rate_limit_exhausted.json": {
    operation: "project_items.graphql",
    operationName: "ProjectItems",
    variables: { login: "acme-robotics", number: 7, cursor: null },
  },
  "rate_limited.json": { rest: true },
};

// GitHub refuses a connection without `first` or `last`, or with one outside 1..100.
function ConnectionsArePaginated(context) {
  return {
    Field(node) {
      const def = context.getFieldDef();
      if (!def || !def.args.some((arg) => arg.name === "first")) return;
      if (!getNamedType(def.type).name.endsWith("Connection")) return;
      const bound = node.arguments.find((arg) => arg.name.value === "first" || arg.name.value === "last");
      if (!bound) {
        context.reportError(
          new GraphQLError(`Connection "${node.name.value}" needs a "first" or "last" argument.`, { nodes: node }),
        );
      } else if (bound.value.kind === Kind.INT && !(+bound.value.value >= 1 && +bound.value.value <= 100)) {
        context.reportError(
          new GraphQLError(`"${bound.name.value}" on "${node.name.value}" must be between 1 and 100.`, { nodes: bound }),
        );
      }
    },
  };
}

let passed = 0;
let failed = 0;
function report(file, problems, what) {
  const name = relative(root, file);
  if (problems.length === 0) {
    passed += 1;
    console.log(`ok    ${name}${what ? ` (${what})` : ""}`);
  } else {
    failed += 1;
    console.log(`FAIL  ${name}`);
    for (const problem of problems) console.log(`      ${problem}`);
  }
}

// The schema. GitHub's published SDL defines a few fields twice (e.g. EnterpriseOwnerInfo's
// repositoryDeployKeySetting); graphql-js refuses that by default, so such duplicates are reported
// and tolerated (the later definition wins, as in GitHub's introspection), and any other problem fails.
const schemaFile = join(operationsDir, "schema.graphql");
const sdl = parse(readFileSync(schemaFile, "utf8"));
const sdlProblems = validateSDL(sdl).map((error) => error.message);
const tolerated = sdlProblems.filter((message) => /^Field ".+" can only be defined once\.$/.test(message));
for (const message of tolerated) console.log(`note  ${relative(root, schemaFile)}: ${message} (GitHub's; tolerated)`);
report(schemaFile, sdlProblems.filter((message) => !tolerated.includes(message)), "GitHub's schema");
const schema = buildASTSchema(sdl, { assumeValidSDL: true });

// Operations.
const documents = new Map();
for (const entry of readdirSync(operationsDir).sort()) {
  if (!entry.endsWith(".graphql") || entry === "schema.graphql") continue;
  const file = join(operationsDir, entry);
  const text = readFileSync(file, "utf8");
  let document;
  try {
    document = parse(text);
  } catch (error) {
    report(file, [error.message]);
    continue;
  }
  const problems = validate(schema, document, [...specifiedRules, ConnectionsArePaginated]).map((error) => {
    const at = (error.locations ?? []).map(({ line, column }) => `${line}:${column}`).join(", ");
    return at ? `${at}: ${error.message}` : error.message;
  });
  const operations = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
  if (operations.length === 0) problems.push("no operation in this file");
  report(file, problems, operations.map((op) => `${op.operation} ${op.name?.value ?? "(anonymous)"}`).join(", "));
  if (problems.length === 0) documents.set(entry, { document });
}

// Fixtures.
function checkLeaf(value, type) {
  if (isEnumType(type)) return type.getValue(value) ? null : `${JSON.stringify(value)} is not a ${type.name} value`;
  const ok = {
    String: () => typeof value === "string",
    ID: () => typeof value === "string",
    Int: () => Number.isInteger(value),
    Float: () => typeof value === "number",
    Boolean: () => typeof value === "boolean",
    DateTime: () => typeof value === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(value),
    Date: () => typeof value === "string" && /^\d{4}-\d\d-\d\d$/.test(value),
    URI: () => typeof value === "string" && URL.canParse(value),
  }[type.name];
  return !ok || ok() ? null : `${JSON.stringify(value)} is not a ${type.name}`;
}

function checkFixture(body, { document }, operationName, variables) {
  const problems = [];
  const operations = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
  const operation =
    operationName === undefined ? operations[0] : operations.find((op) => op.name?.value === operationName);
  if (!operation) return [`no operation ${operationName} in the document`];
  const fragments = Object.fromEntries(
    document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]),
  );
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables);
  if (coerced.errors) return coerced.errors.map((error) => `variables: ${error.message}`);
  const vars = coerced.coerced;

  const included = (node) =>
    getDirectiveValues(GraphQLSkipDirective, node, vars)?.if !== true &&
    getDirectiveValues(GraphQLIncludeDirective, node, vars)?.if !== false;
  const applies = (condition, runtime) => {
    const type = condition ? typeFromAST(schema, condition) : runtime;
    return type === runtime || (isAbstractType(type) && schema.isSubType(type, runtime));
  };
  // Response key -> the field nodes selected under it, for an object of type `runtime`.
  const collect = (runtime, selectionSet, fields = new Map()) => {
    for (const selection of selectionSet.selections) {
      if (!included(selection)) continue;
      if (selection.kind === Kind.FIELD) {
        const key = selection.alias?.value ?? selection.name.value;
        fields.set(key, [...(fields.get(key) ?? []), selection]);
      } else {
        const fragment = selection.kind === Kind.INLINE_FRAGMENT ? selection : fragments[selection.name.value];
        if (applies(fragment.typeCondition, runtime)) collect(runtime, fragment.selectionSet, fields);
      }
    }
    return fields;
  };
  const walk = (value, type, nodes, path) => {
    if (isNonNullType(type)) {
      if (value === null) problems.push(`${path}: null, but the schema says ${type}`);
      else walk(value, type.ofType, nodes, path);
      return;
    }
    if (value === null) return;
    if (isListType(type)) {
      if (!Array.isArray(value)) problems.push(`${path}: expected a list (${type})`);
      else value.forEach((item, i) => walk(item, type.ofType, nodes, `${path}[${i}]`));
      return;
    }
    if (isLeafType(type)) {
      const problem = checkLeaf(value, type);
      if (problem) problems.push(`${path}: ${problem}`);
      return;
    }
    if (typeof value !== "object" || Array.isArray(value)) {
      problems.push(`${path}: expected an object (${type})`);
      return;
    }
    const fieldsOf = (runtime) => {
      const fields = new Map();
      for (const node of nodes) if (node.selectionSet) collect(runtime, node.selectionSet, fields);
      return fields;
    };
    let runtime = type;
    if (isAbstractType(type) && "__typename" in value) {
      runtime = schema.getType(value.__typename);
      if (!isObjectType(runtime) || !schema.isSubType(type, runtime)) {
        problems.push(`${path}: __typename ${JSON.stringify(value.__typename)} is not a member of ${type}`);
        return;
      }
    } else if (isAbstractType(type)) {
      // Without __typename the member is unknown: fine while every member selects the same keys.
      const members = schema.getPossibleTypes(type);
      const keys = (member) => [...fieldsOf(member).keys()].join();
      if (!members.every((member) => keys(member) === keys(members[0]))) {
        problems.push(`${path}: ${type} members select different fields, so the query must select __typename`);
        return;
      }
      runtime = members[0];
    }
    const fields = fieldsOf(runtime);
    for (const key of Object.keys(value)) {
      if (!fields.has(key)) problems.push(`${path}.${key}: not selected by the query`);
    }
    for (const [key, fieldNodes] of fields) {
      if (!(key in value)) {
        problems.push(`${path}.${key}: selected but missing`);
        continue;
      }
      const name = fieldNodes[0].name.value;
      const def = name === "__typename" ? TypeNameMetaFieldDef : runtime.getFields()[name];
      walk(value[key], def.type, fieldNodes, `${path}.${key}`);
    }
  };

  // The field nodes of this operation that a response path names (list indexes skipped), whatever
  // the type conditions on the way.
  const fieldsAt = (path) => {
    let fields = [operation];
    for (const key of path) {
      if (typeof key !== "string") continue;
      const found = [];
      const visit = (selectionSet) => {
        for (const selection of selectionSet?.selections ?? []) {
          if (selection.kind === Kind.FIELD) {
            if ((selection.alias?.value ?? selection.name.value) === key) found.push(selection);
          } else {
            visit((selection.kind === Kind.INLINE_FRAGMENT ? selection : fragments[selection.name.value]).selectionSet);
          }
        }
      };
      for (const field of fields) visit(field.selectionSet);
      fields = found;
    }
    return fields;
  };

  for (const key of Object.keys(body)) {
    if (!["data", "errors", "extensions"].includes(key)) problems.push(`${key}: not a GraphQL response key`);
  }
  if (!("data" in body) && !("errors" in body)) problems.push("neither data nor errors");
  if ("errors" in body && !(Array.isArray(body.errors) && body.errors.length > 0)) {
    problems.push("errors: must be a non-empty list when present");
  }
  if (body.data !== undefined && body.data !== null) {
    walk(body.data, schema.getRootType(operation.operation), [operation], "data");
  }
  for (const [i, error] of (Array.isArray(body.errors) ? body.errors : []).entries()) {
    if (typeof error.message !== "string") problems.push(`errors[${i}]: no message`);
    if (error.path === undefined) continue;
    // A path names fields this operation selects, and a location points at where one of them is.
    const fields = fieldsAt(error.path);
    if (fields.length === 0) {
      problems.push(`errors[${i}]: path ${JSON.stringify(error.path)} names no field ${operation.name?.value} selects`);
      continue;
    }
    const at = fields.map(({ loc }) => `${loc.startToken.line}:${loc.startToken.column}`);
    for (const { line, column } of error.locations ?? []) {
      if (!at.includes(`${line}:${column}`)) {
        problems.push(`errors[${i}]: ${line}:${column} is not where "${error.path.at(-1)}" is selected (${at.join(", ")})`);
      }
    }
  }
  return problems;
}

for (const entry of readdirSync(fixturesDir).sort()) {
  if (!entry.endsWith(".json")) continue;
  const file = join(fixturesDir, entry);
  const expected = FIXTURES[entry];
  let body;
  try {
    body = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    report(file, [`not JSON: ${error.message}`]);
    continue;
  }
  if (!expected) {
    report(file, ["not listed in FIXTURES in scripts/check-graphql.mjs: say which operation it answers"]);
  } else if (expected.rest) {
    const problems = ["message", "documentation_url"]
      .filter((key) => typeof body[key] !== "string")
      .map((key) => `${key}: missing or not a string`);
    report(file, problems, "REST-style error body");
  } else if (!documents.has(expected.operation)) {
    report(file, [`its operation ${expected.operation} is missing or failed above`]);
  } else {
    const { operationName, variables } = expected;
    const problems = checkFixture(body, documents.get(expected.operation), operationName, variables);
    report(file, problems, `answers ${expected.operation}${operationName ? ` ${operationName}` : ""}`);
  }
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
