// Checks JSON values against the types the vendor's SDK declares in its
// .d.ts files, with the TypeScript compiler's own type checker: every
// property the SDK declares required (no `?`) must be present, and every
// present property must have the declared type (string, number, boolean,
// a member of a string-literal enum, an array, an object), recursively.
import ts from 'typescript';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const sdk = './node_modules/@gitpod/sdk';

// TYPES names each response type the scenario checks: an expression over
// the SDK's declaration files (relative to this directory).
const TYPES = {
  IdentityGetAuthenticatedIdentityResponse: `import('${sdk}/resources/identity').IdentityGetAuthenticatedIdentityResponse`,
  IdentityGetIDTokenResponse: `import('${sdk}/resources/identity').IdentityGetIDTokenResponse`,
  RunnersPage: `import('${sdk}/core/pagination').RunnersPageResponse<import('${sdk}/resources/runners/runners').Runner>`,
  RunnerRetrieveResponse: `import('${sdk}/resources/runners/runners').RunnerRetrieveResponse`,
  RunnerCreateResponse: `import('${sdk}/resources/runners/runners').RunnerCreateResponse`,
  RunnerCreateRunnerTokenResponse: `import('${sdk}/resources/runners/runners').RunnerCreateRunnerTokenResponse`,
  RunnerParseContextURLResponse: `import('${sdk}/resources/runners/runners').RunnerParseContextURLResponse`,
  EnvironmentClassesPage: `import('${sdk}/core/pagination').EnvironmentClassesPageResponse<import('${sdk}/resources/shared').EnvironmentClass>`,
  EnvironmentCreateResponse: `import('${sdk}/resources/environments/environments').EnvironmentCreateResponse`,
  EnvironmentRetrieveResponse: `import('${sdk}/resources/environments/environments').EnvironmentRetrieveResponse`,
  EnvironmentsPage: `import('${sdk}/core/pagination').EnvironmentsPageResponse<import('${sdk}/resources/environments/environments').Environment>`,
  EnvironmentCreateLogsTokenResponse: `import('${sdk}/resources/environments/environments').EnvironmentCreateLogsTokenResponse`,
  AutomationUpsertResponse: `import('${sdk}/resources/environments/automations/automations').AutomationUpsertResponse`,
  ServiceCreateResponse: `import('${sdk}/resources/environments/automations/services').ServiceCreateResponse`,
  ServiceRetrieveResponse: `import('${sdk}/resources/environments/automations/services').ServiceRetrieveResponse`,
  ServicesPage: `import('${sdk}/core/pagination').ServicesPageResponse<import('${sdk}/resources/environments/automations/services').Service>`,
  TaskCreateResponse: `import('${sdk}/resources/environments/automations/tasks/tasks').TaskCreateResponse`,
  TaskRetrieveResponse: `import('${sdk}/resources/environments/automations/tasks/tasks').TaskRetrieveResponse`,
  TaskStartResponse: `import('${sdk}/resources/environments/automations/tasks/tasks').TaskStartResponse`,
  TasksPage: `import('${sdk}/core/pagination').TasksPageResponse<import('${sdk}/resources/shared').Task>`,
  TaskExecutionsPage: `import('${sdk}/core/pagination').TaskExecutionsPageResponse<import('${sdk}/resources/shared').TaskExecution>`,
  ExecutionRetrieveResponse: `import('${sdk}/resources/environments/automations/tasks/executions').ExecutionRetrieveResponse`,
  SecretCreateResponse: `import('${sdk}/resources/secrets').SecretCreateResponse`,
  SecretsPage: `import('${sdk}/core/pagination').SecretsPageResponse<import('${sdk}/resources/secrets').Secret>`,
  EventWatchResponse: `import('${sdk}/resources/events').EventWatchResponse`,
};

let cached;

function load() {
  if (cached) return cached;
  const file = path.join(here, '__sdk_types__.ts');
  const source = Object.entries(TYPES)
    .map(([name, expr]) => `export type ${name} = ${expr};`)
    .join('\n');
  const options = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    lib: ['lib.es2022.d.ts'],
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.readFile = (f) => (path.resolve(f) === file ? source : readFile(f));
  host.fileExists = (f) => path.resolve(f) === file || fileExists(f);
  host.getSourceFile = ((orig) => (f, lang, ...rest) =>
    path.resolve(f) === file ? ts.createSourceFile(f, source, lang) : orig(f, lang, ...rest))(host.getSourceFile.bind(host));
  const program = ts.createProgram([file], options, host);
  const diags = ts.getPreEmitDiagnostics(program).filter((d) => d.file && path.resolve(d.file.fileName) === file);
  if (diags.length) {
    throw new Error('type expressions do not resolve: ' + diags.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')).join('; '));
  }
  const checker = program.getTypeChecker();
  const sf = program.getSourceFile(file);
  const types = {};
  for (const st of sf.statements) {
    if (ts.isTypeAliasDeclaration(st)) types[st.name.text] = checker.getTypeAtLocation(st.name);
  }
  cached = { checker, types };
  return cached;
}

const F = ts.TypeFlags;

function describe(checker, t) {
  return checker.typeToString(t, undefined, ts.TypeFormatFlags.NoTruncation).slice(0, 200);
}

// problems returns why value is not of type t, [] when it is.
function problems(checker, value, t, where, depth) {
  if (depth > 40) return [];
  if (t.flags & (F.Any | F.Unknown)) return [];
  if (value === null) {
    if (t.flags & F.Null) return [];
    if (t.isUnion() && t.types.some((m) => m.flags & F.Null)) return [];
    return [`${where}: null where ${describe(checker, t)} is declared`];
  }
  if (t.isUnion()) {
    const members = t.types.filter((m) => !(m.flags & (F.Null | F.Undefined)));
    if (members.length && members.every((m) => m.flags & F.StringLiteral)) {
      const allowed = members.map((m) => m.value);
      return allowed.includes(value) ? [] : [`${where}: ${JSON.stringify(value)} is not one of ${allowed.join(', ')}`];
    }
    if (members.length && members.every((m) => m.flags & F.BooleanLiteral)) {
      return typeof value === 'boolean' ? [] : [`${where}: ${JSON.stringify(value)} is not a boolean`];
    }
    let best;
    for (const m of members) {
      const p = problems(checker, value, m, where, depth + 1);
      if (p.length === 0) return [];
      if (!best || p.length < best.length) best = p;
    }
    return best ?? [];
  }
  if (t.flags & F.StringLiteral) return value === t.value ? [] : [`${where}: ${JSON.stringify(value)} is not ${JSON.stringify(t.value)}`];
  if (t.flags & F.StringLike) return typeof value === 'string' ? [] : [`${where}: ${JSON.stringify(value)} is not a string`];
  if (t.flags & F.NumberLike) return typeof value === 'number' ? [] : [`${where}: ${JSON.stringify(value)} is not a number`];
  if (t.flags & F.BooleanLike) return typeof value === 'boolean' ? [] : [`${where}: ${JSON.stringify(value)} is not a boolean`];
  if (checker.isArrayType(t)) {
    if (!Array.isArray(value)) return [`${where}: ${JSON.stringify(value)?.slice(0, 80)} is not an array`];
    const [elem] = checker.getTypeArguments(t);
    return value.flatMap((v, i) => problems(checker, v, elem, `${where}[${i}]`, depth + 1));
  }
  if (t.flags & F.Object || t.isIntersection()) {
    if (typeof value !== 'object' || Array.isArray(value)) return [`${where}: ${JSON.stringify(value)?.slice(0, 80)} is not an object`];
    const out = [];
    const props = checker.getPropertiesOfType(t);
    for (const p of props) {
      const optional = (p.flags & ts.SymbolFlags.Optional) !== 0;
      const v = value[p.name];
      if (v === undefined) {
        if (!optional) out.push(`${where}.${p.name}: required by the SDK's types but missing`);
        continue;
      }
      out.push(...problems(checker, v, checker.getTypeOfSymbol(p), `${where}.${p.name}`, depth + 1));
    }
    const index = checker.getIndexInfosOfType(t).find((i) => i.keyType.flags & F.String);
    if (index && props.length === 0) {
      for (const [k, v] of Object.entries(value)) out.push(...problems(checker, v, index.type, `${where}[${JSON.stringify(k)}]`, depth + 1));
    }
    return out;
  }
  return [];
}

// checkType returns the problems of value against the SDK type called name
// (a key of TYPES).
export function checkType(name, value) {
  const { checker, types } = load();
  const t = types[name];
  if (!t) throw new Error(`unknown type ${name}`);
  return problems(checker, value, t, name, 0);
}

export const typeNames = Object.keys(TYPES);
