// Drives a live runyard with the vendor's TypeScript SDK (@gitpod/sdk), as a
// user of the vendor's API would: the client is constructed with only the
// base URL and the bearer token changed. Every step prints "ok <step>" or
// "FAIL <step>: <why>"; the exit code is 1 when any step failed. Every
// response is checked against the SDK's declared types (typecheck.mjs).
//
// Environment:
//   RUNYARD_URL         the control plane's URL (required)
//   RUNYARD_TOKEN       an admin API key (required)
//   RUNYARD_RUNNER_ID   the ID of a connected runner on the host (required)
//   RUNYARD_REPO        a local git repository to create environments from (required)
//   RUNYARD_SDK_API_PREFIX=1   use the SDK's own base URL form, URL + "/api"
//   RUNYARD_SDK_EVENTS=1       also run the steps that need EventService.WatchEvents
//                              (events.watch and the SDK helpers built on it)
//   RUNYARD_SDK_CONTEXT_URL=1  also create an environment from a contextUrl and
//                              call runners.parseContextURL
//   RUNYARD_SDK_EMPTY_LISTS=1  an empty list page missing its list fails the run
//                              (otherwise that one step reports KNOWN)
//
// Printed for the Go test to verify: "ID_TOKEN <jwt>".
import { Gitpod, NotFoundError, BadRequestError, PermissionDeniedError, AuthenticationError } from '@gitpod/sdk';
import { waitForEnvironmentRunning, findEnvironmentClassById, findMostUsedEnvironmentClass } from '@gitpod/sdk/lib/environment';
import { runCommand, runService } from '@gitpod/sdk/lib/automation';
import { randomUUID } from 'node:crypto';
import { checkType } from './typecheck.mjs';

const env = (k) => {
  const v = process.env[k];
  if (!v) {
    console.error(`${k} is required`);
    process.exit(2);
  }
  return v;
};
const URL_ = env('RUNYARD_URL').replace(/\/$/, '');
const TOKEN = env('RUNYARD_TOKEN');
const RUNNER_ID = env('RUNYARD_RUNNER_ID');
const REPO = env('RUNYARD_REPO');
const EVENTS = process.env.RUNYARD_SDK_EVENTS === '1';
const CONTEXT_URL = process.env.RUNYARD_SDK_CONTEXT_URL === '1';
const EMPTY_LISTS = process.env.RUNYARD_SDK_EMPTY_LISTS === '1';
// The SDK's default base URL ends in /api (https://app.gitpod.io/api).
const BASE_URL = URL_ + (process.env.RUNYARD_SDK_API_PREFIX === '1' ? '/api' : '');

// Only the base URL and the token differ from a client of the vendor's API.
const client = new Gitpod({ baseURL: BASE_URL, bearerToken: TOKEN, maxRetries: 0 });

const failures = [];
const state = {};

// step runs one check. With enforced false (a check waiting for another
// branch) a failure prints "KNOWN" and does not fail the run.
async function step(name, fn, enforced = true) {
  try {
    await fn();
    console.log(`ok ${name}`);
  } catch (e) {
    const why = (e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)).replace(/\n/g, '\n    ');
    if (!enforced) {
      console.log(`KNOWN ${name}: ${why}`);
      return;
    }
    failures.push(name);
    console.log(`FAIL ${name}: ${why}`);
  }
}

function need(...keys) {
  for (const k of keys) if (state[k] === undefined) throw new Error(`skipped: an earlier step did not give ${k}`);
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

function expectType(typeName, value) {
  const p = checkType(typeName, value);
  if (p.length) throw new Error(`response does not match the SDK's types:\n${p.join('\n')}`);
}

// call awaits an SDK call and checks its parsed body against typeName.
async function call(typeName, promise) {
  const { data } = await promise.withResponse();
  if (typeName) expectType(typeName, data);
  return data;
}

// rawPage checks a list response's body as the server sent it (the SDK's
// page objects fill in a missing list, which would hide one).
async function rawPage(typeName, pagePromise) {
  const res = await pagePromise.asResponse();
  const body = await res.json();
  expectType(typeName, body);
  return body;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// poll calls fn until it returns something other than undefined; bounded.
async function poll(what, fn, timeoutMs = 120000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: last error ${last}` : ''}`);
}

async function expectError(cls, promise) {
  try {
    await promise;
  } catch (e) {
    if (e instanceof cls) return e;
    throw new Error(`want ${cls.name}, got ${e?.constructor?.name}: ${e?.message}`);
  }
  throw new Error(`want ${cls.name}, the call succeeded`);
}

async function envPhase(id, phase) {
  return poll(`environment ${id} in ${phase}`, async () => {
    const r = await call('EnvironmentRetrieveResponse', client.environments.retrieve({ environmentId: id }));
    if (r.environment.status?.failureMessage?.length) throw new Error(`failed: ${r.environment.status.failureMessage.join('; ')}`);
    return r.environment.status?.phase === phase ? r.environment : undefined;
  });
}

// --- identity ---------------------------------------------------------------

await step('identity.getAuthenticatedIdentity', async () => {
  const r = await call('IdentityGetAuthenticatedIdentityResponse', client.identity.getAuthenticatedIdentity({}));
  assert(r.organizationId, 'no organizationId');
  state.orgId = r.organizationId;
});

await step('identity.getIDToken', async () => {
  const r = await call('IdentityGetIDTokenResponse', client.identity.getIDToken({ audience: ['https://sdk.example.test'] }));
  assert(typeof r.token === 'string' && r.token.split('.').length === 3, `not a JWT: ${r.token}`);
  console.log(`ID_TOKEN ${r.token}`);
});

await step('identity.getIDToken without an audience is BadRequestError', async () => {
  await expectError(BadRequestError, client.identity.getIDToken({}));
});

// --- runners ----------------------------------------------------------------

await step('runners.list', async () => {
  const body = await rawPage('RunnersPage', client.runners.list({}));
  assert(body.runners.some((r) => r.runnerId === RUNNER_ID), `runner ${RUNNER_ID} not listed`);
  const seen = [];
  for await (const r of client.runners.list({})) seen.push(r.runnerId);
  assert(seen.includes(RUNNER_ID), 'the auto-pager did not yield the runner');
});

await step('runners.retrieve', async () => {
  const r = await call('RunnerRetrieveResponse', client.runners.retrieve({ runnerId: RUNNER_ID }));
  assert(r.runner.runnerId === RUNNER_ID, 'another runner');
  assert(r.runner.status?.phase === 'RUNNER_PHASE_ACTIVE', `phase ${r.runner.status?.phase}`);
});

await step('runners.create', async () => {
  const r = await call('RunnerCreateResponse', client.runners.create({ name: `sdk-${randomUUID().slice(0, 8)}`, provider: 'RUNNER_PROVIDER_LINUX_HOST' }));
  assert(r.runner.runnerId, 'no runnerId');
  assert(r.exchangeToken, 'no exchangeToken');
  state.extraRunner = r.runner.runnerId;
});

await step('runners.createRunnerToken', async () => {
  need('extraRunner');
  const r = await call('RunnerCreateRunnerTokenResponse', client.runners.createRunnerToken({ runnerId: state.extraRunner }));
  assert(r.exchangeToken, 'no exchangeToken');
});

await step('runners.delete', async () => {
  need('extraRunner');
  await client.runners.delete({ runnerId: state.extraRunner });
});

// --- environments -----------------------------------------------------------

await step('environments.classes.list', async () => {
  const body = await rawPage('EnvironmentClassesPage', client.environments.classes.list({ filter: { runnerIds: [RUNNER_ID] } }));
  assert(body.environmentClasses.length === 1, `${body.environmentClasses.length} classes`);
  state.classId = body.environmentClasses[0].id;
});

await step('lib findEnvironmentClassById', async () => {
  need('classId');
  const cl = await findEnvironmentClassById(client, state.classId);
  assert(cl?.id === state.classId, 'class not found by the helper');
});

await step('environments.create (git initializer, local repository)', async () => {
  need('classId');
  const r = await call('EnvironmentCreateResponse', client.environments.create({
    spec: {
      desiredPhase: 'ENVIRONMENT_PHASE_RUNNING',
      machine: { class: state.classId },
      content: { initializer: { specs: [{ git: { remoteUri: `file://${REPO}`, targetMode: 'CLONE_TARGET_MODE_REMOTE_HEAD' } }] } },
    },
  }));
  state.envId = r.environment.id;
});

if (EVENTS) {
  await step('lib waitForEnvironmentRunning (events)', async () => {
    need('envId');
    await withTimeout(waitForEnvironmentRunning(client, state.envId), 120000, 'waitForEnvironmentRunning');
  });
}

await step('environments.retrieve until RUNNING', async () => {
  need('envId');
  const e = await envPhase(state.envId, 'ENVIRONMENT_PHASE_RUNNING');
  assert(e.metadata?.runnerId === RUNNER_ID, `runnerId ${e.metadata?.runnerId}`);
});

await step('lib waitForEnvironmentRunning (already running)', async () => {
  need('envId');
  // Resolves from the first GetEnvironment; its background event loop is
  // closed right after.
  await withTimeout(waitForEnvironmentRunning(client, state.envId), 60000, 'waitForEnvironmentRunning');
});

await step('environments.list', async () => {
  need('envId');
  const body = await rawPage('EnvironmentsPage', client.environments.list({}));
  assert(body.environments.some((e) => e.id === state.envId), 'environment not listed');
});

await step('lib findMostUsedEnvironmentClass', async () => {
  need('classId');
  const cl = await findMostUsedEnvironmentClass(client);
  assert(cl?.id === state.classId, `got ${cl?.id}`);
});

await step('environments.update (name, git identity)', async () => {
  need('envId');
  await client.environments.update({
    environmentId: state.envId,
    metadata: { name: 'renamed-by-sdk' },
    spec: { content: { gitEmail: 'sdk@example.test', gitUsername: 'sdk' } },
  });
  const r = await call('EnvironmentRetrieveResponse', client.environments.retrieve({ environmentId: state.envId }));
  assert(r.environment.metadata?.name === 'renamed-by-sdk', `name ${r.environment.metadata?.name}`);
  assert(r.environment.spec?.content?.gitEmail === 'sdk@example.test', `gitEmail ${r.environment.spec?.content?.gitEmail}`);
});

// The vendor's documented example adds an SSH key; a port and a timeout
// ride along. Each must come back in the environment.
const SDK_SSH_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl sdk@host';
await step('environments.update (port, SSH key, timeout) and retrieve them', async () => {
  need('envId');
  const keyId = '0194b7c1-c954-718d-91a4-9a742aa5fc11';
  await client.environments.update({
    environmentId: state.envId,
    spec: {
      ports: [{ port: 8080, name: 'web', admission: 'ADMISSION_LEVEL_OWNER_ONLY' }],
      sshPublicKeys: [{ id: keyId, value: SDK_SSH_KEY }],
      timeout: { disconnected: '7200s' },
    },
  });
  let e = (await call('EnvironmentRetrieveResponse', client.environments.retrieve({ environmentId: state.envId }))).environment;
  const port = e.spec?.ports?.[0];
  assert(e.spec?.ports?.length === 1 && port.port === 8080 && port.name === 'web' && port.admission === 'ADMISSION_LEVEL_OWNER_ONLY', `spec.ports ${JSON.stringify(e.spec?.ports)}`);
  assert(e.status?.environmentUrls?.ports?.length === 1 && e.status.environmentUrls.ports[0].port === 8080, `status.environmentUrls ${JSON.stringify(e.status?.environmentUrls)}`);
  const key = e.spec?.sshPublicKeys?.[0];
  assert(e.spec?.sshPublicKeys?.length === 1 && key.id === keyId && key.value === SDK_SSH_KEY, `spec.sshPublicKeys ${JSON.stringify(e.spec?.sshPublicKeys)}`);
  assert(e.spec?.timeout?.disconnected === '7200s', `spec.timeout ${JSON.stringify(e.spec?.timeout)}`);
  // A key without a value is removed; "0s" disables the inactivity stop.
  await client.environments.update({ environmentId: state.envId, spec: { sshPublicKeys: [{ id: keyId }], timeout: { disconnected: '0s' } } });
  e = (await call('EnvironmentRetrieveResponse', client.environments.retrieve({ environmentId: state.envId }))).environment;
  assert(!e.spec?.sshPublicKeys?.length, `spec.sshPublicKeys after removal ${JSON.stringify(e.spec?.sshPublicKeys)}`);
  assert(!e.spec?.timeout?.disconnected, `spec.timeout after disabling ${JSON.stringify(e.spec?.timeout)}`);
  assert(e.spec?.ports?.length === 1, `spec.ports changed by an update without ports: ${JSON.stringify(e.spec?.ports)}`);
  assert(e.status?.phase === 'ENVIRONMENT_PHASE_RUNNING', `phase ${e.status?.phase}`);
});

await step('environments.update with a bad SSH key is BadRequestError naming it', async () => {
  need('envId');
  const err = await expectError(BadRequestError, client.environments.update({ environmentId: state.envId, spec: { sshPublicKeys: [{ id: 'k', value: 'not a key' }] } }));
  assert(err.message.includes('spec.sshPublicKeys[0].value'), err.message);
});

await step('environments.update with a bad field is BadRequestError', async () => {
  need('envId');
  await expectError(BadRequestError, client.environments.update({ environmentId: state.envId, spec: { automationsFile: { automationsFilePath: '/absolute' } } }));
});

// --- automations ------------------------------------------------------------

await step('environments.automations.upsert', async () => {
  need('envId');
  const r = await call('AutomationUpsertResponse', client.environments.automations.upsert({
    environmentId: state.envId,
    automationsFile: {
      services: { 'file-svc': { name: 'File service', commands: { start: 'sleep 300' }, triggeredBy: ['manual'] } },
      tasks: { 'file-task': { name: 'File task', command: 'echo from-file', triggeredBy: ['manual'] } },
    },
  }));
  assert(r.updatedServiceIds?.length === 1 && r.updatedTaskIds?.length === 1, JSON.stringify(r));
});

await step('services.create', async () => {
  need('envId');
  const r = await call('ServiceCreateResponse', client.environments.automations.services.create({
    environmentId: state.envId,
    metadata: { reference: 'sdk-svc', name: 'SDK service', triggeredBy: [{ manual: true }] },
    spec: { commands: { start: 'while true; do echo tick; sleep 1; done' } },
  }));
  state.serviceId = r.service.id;
});

await step('services.start and retrieve until RUNNING', async () => {
  need('serviceId');
  await client.environments.automations.services.start({ id: state.serviceId });
  await poll('service RUNNING', async () => {
    const r = await call('ServiceRetrieveResponse', client.environments.automations.services.retrieve({ id: state.serviceId }));
    return r.service.status?.phase === 'SERVICE_PHASE_RUNNING' ? r : undefined;
  });
});

await step('services.list', async () => {
  need('envId', 'serviceId');
  const body = await rawPage('ServicesPage', client.environments.automations.services.list({ filter: { environmentIds: [state.envId] } }));
  assert(body.services.some((s) => s.id === state.serviceId), 'service not listed');
  assert(body.services.length === 2, `${body.services.length} services, want the file's and the SDK's`);
});

await step('services.stop and retrieve until STOPPED', async () => {
  need('serviceId');
  await client.environments.automations.services.stop({ id: state.serviceId });
  await poll('service STOPPED', async () => {
    const r = await call('ServiceRetrieveResponse', client.environments.automations.services.retrieve({ id: state.serviceId }));
    return r.service.status?.phase === 'SERVICE_PHASE_STOPPED' ? r : undefined;
  });
});

await step('tasks.create', async () => {
  need('envId');
  const r = await call('TaskCreateResponse', client.environments.automations.tasks.create({
    environmentId: state.envId,
    metadata: { reference: 'sdk-task', name: 'SDK task' },
    spec: { command: 'echo first-command' },
  }));
  state.taskId = r.task.id;
});

await step('tasks.list', async () => {
  need('envId', 'taskId');
  const body = await rawPage('TasksPage', client.environments.automations.tasks.list({ filter: { environmentIds: [state.envId] } }));
  assert(body.tasks.some((t) => t.id === state.taskId), 'task not listed');
});

// runCommand's path when its task exists: update the command, then start.
await step('tasks.update and tasks.retrieve', async () => {
  need('taskId');
  await client.environments.automations.tasks.update({ id: state.taskId, spec: { command: 'echo hello-from-sdk' } });
  const r = await call('TaskRetrieveResponse', client.environments.automations.tasks.retrieve({ id: state.taskId }));
  assert(r.task.spec?.command === 'echo hello-from-sdk', `command ${r.task.spec?.command}`);
});

await step('tasks.start', async () => {
  need('taskId');
  const r = await call('TaskStartResponse', client.environments.automations.tasks.start({ id: state.taskId }));
  state.executionId = r.taskExecution.id;
});

await step('executions.list', async () => {
  need('taskId', 'executionId');
  const body = await rawPage('TaskExecutionsPage', client.environments.automations.tasks.executions.list({ filter: { taskIds: [state.taskId] } }));
  assert(body.taskExecutions.some((x) => x.id === state.executionId), 'execution not listed');
});

await step('executions.retrieve until SUCCEEDED', async () => {
  need('executionId');
  const r = await poll('execution SUCCEEDED', async () => {
    const r = await call('ExecutionRetrieveResponse', client.environments.automations.tasks.executions.retrieve({ id: state.executionId }));
    const phase = r.taskExecution.status?.phase;
    if (phase === 'TASK_EXECUTION_PHASE_FAILED') throw new Error(`failed: ${r.taskExecution.status?.failureMessage}`);
    return phase === 'TASK_EXECUTION_PHASE_SUCCEEDED' ? r : undefined;
  });
  state.logUrl = r.taskExecution.status?.logUrl;
  assert(state.logUrl, 'no status.logUrl');
});

// --- logs (the flow of the SDK's streamLogs) ---------------------------------

await step('environments.createLogsToken and read status.logUrl with it', async () => {
  need('envId', 'logUrl');
  const r = await call('EnvironmentCreateLogsTokenResponse', client.environments.createLogsToken({ environmentId: state.envId }));
  const res = await fetch(state.logUrl, { headers: { Authorization: `Bearer ${r.accessToken}` } });
  const text = await res.text();
  assert(res.status === 200, `GET logUrl: ${res.status} ${text}`);
  assert(text.includes('hello-from-sdk'), `log lacks the task's output: ${JSON.stringify(text)}`);
  state.logsToken = r.accessToken;
});

await step('a logs token reads logs only', async () => {
  need('logsToken', 'envId');
  const logsClient = new Gitpod({ baseURL: BASE_URL, bearerToken: state.logsToken, maxRetries: 0 });
  await expectError(PermissionDeniedError, logsClient.environments.retrieve({ environmentId: state.envId }));
  const res = await fetch(state.logUrl);
  assert(res.status === 401, `GET logUrl without a token: ${res.status}`);
});

// --- events (EventService.WatchEvents; behind RUNYARD_SDK_EVENTS) -------------

function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise.finally(() => clearTimeout(t)),
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what} did not finish in ${ms} ms`)), ms);
    }),
  ]);
}

if (EVENTS) {
  await step('events.watch until an execution succeeds', async () => {
    need('envId', 'taskId');
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 120000);
    try {
      const stream = await client.events.watch({ environmentId: state.envId }, { signal: controller.signal });
      const x = await call('TaskStartResponse', client.environments.automations.tasks.start({ id: state.taskId }));
      const id = x.taskExecution.id;
      for await (const ev of stream) {
        expectType('EventWatchResponse', ev);
        if (ev.resourceType !== 'RESOURCE_TYPE_TASK_EXECUTION' || ev.resourceId !== id) continue;
        const r = await client.environments.automations.tasks.executions.retrieve({ id });
        if (r.taskExecution.status?.phase === 'TASK_EXECUTION_PHASE_SUCCEEDED') return;
      }
      throw new Error('the event stream ended before the execution succeeded');
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  });

  await step('lib runCommand', async () => {
    need('envId');
    const lines = [];
    await withTimeout((async () => {
      for await (const line of await runCommand(client, state.envId, 'echo run-command-ok')) {
        lines.push(line);
        if (line.includes('run-command-ok')) return;
      }
    })(), 120000, 'runCommand');
    assert(lines.some((l) => l.includes('run-command-ok')), `output: ${JSON.stringify(lines)}`);
  });

  await step('lib runService', async () => {
    need('envId');
    const lines = [];
    await withTimeout((async () => {
      const it = await runService(client, state.envId, { reference: 'sdk-run-service', name: 'SDK runService' }, { commands: { start: 'echo service-says-hi; sleep 300' } });
      for await (const line of it) {
        lines.push(line);
        if (line.includes('service-says-hi')) return;
      }
    })(), 120000, 'runService');
    assert(lines.some((l) => l.includes('service-says-hi')), `output: ${JSON.stringify(lines)}`);
  });
}

// --- secrets and the auto-pager ---------------------------------------------

await step('secrets.create', async () => {
  need('orgId');
  const r = await call('SecretCreateResponse', client.secrets.create({
    name: 'SDK_SECRET', value: 's3cr3t', environmentVariable: true, scope: { organizationId: state.orgId },
  }));
  state.secretId = r.secret.id;
  assert(!JSON.stringify(r).includes('s3cr3t'), 'the response carries the value');
});

await step('secrets.list', async () => {
  need('orgId', 'secretId');
  const body = await rawPage('SecretsPage', client.secrets.list({ filter: { scope: { organizationId: state.orgId } } }));
  assert(body.secrets.some((s) => s.id === state.secretId), 'secret not listed');
});

await step('secrets.delete', async () => {
  need('secretId');
  await client.secrets.delete({ secretId: state.secretId });
  const page = await client.secrets.list({ filter: { scope: { organizationId: state.orgId } } });
  assert(!page.secrets.some((s) => s.id === state.secretId), 'deleted secret still listed');
});

// An empty page must carry its list (issue 11 item 3, another branch).
await step('secrets.list (empty page keeps its list)', async () => {
  need('orgId');
  await rawPage('SecretsPage', client.secrets.list({ filter: { scope: { organizationId: state.orgId } } }));
}, EMPTY_LISTS);

await step('auto-pager: for await over more secrets than a page', async () => {
  need('orgId');
  const ids = [];
  for (let i = 0; i < 12; i++) {
    const r = await client.secrets.create({ name: `SDK_PAGE_${i}`, value: `v${i}`, environmentVariable: true, scope: { organizationId: state.orgId } });
    ids.push(r.secret.id);
  }
  try {
    const seen = [];
    for await (const s of client.secrets.list({ pageSize: 5, filter: { scope: { organizationId: state.orgId } } })) {
      expectType('SecretsPage', { pagination: {}, secrets: [s] });
      seen.push(s.id);
    }
    assert(new Set(seen).size === seen.length, 'a secret came twice');
    for (const id of ids) assert(seen.includes(id), `secret ${id} missing from the pages`);
    let page = await client.secrets.list({ pageSize: 5, filter: { scope: { organizationId: state.orgId } } });
    let pages = 1;
    while (page.hasNextPage()) {
      page = await page.getNextPage();
      pages++;
    }
    assert(pages >= 3, `${pages} pages of 5 for ${seen.length} secrets`);
  } finally {
    for (const id of ids) await client.secrets.delete({ secretId: id });
  }
});

// --- error classes ----------------------------------------------------------

await step('a missing environment is NotFoundError', async () => {
  await expectError(NotFoundError, client.environments.retrieve({ environmentId: randomUUID() }));
});

await step('bad input is BadRequestError', async () => {
  await expectError(BadRequestError, client.environments.create({ spec: { machine: { class: 'not-a-uuid' } } }));
});

await step('a wrong token is AuthenticationError', async () => {
  const bad = new Gitpod({ baseURL: BASE_URL, bearerToken: 'ryd_ak_wrong', maxRetries: 0 });
  await expectError(AuthenticationError, bad.runners.list({}));
});

// --- contextUrl (behind RUNYARD_SDK_CONTEXT_URL) -----------------------------

if (CONTEXT_URL) {
  await step('runners.parseContextURL', async () => {
    const r = await call('RunnerParseContextURLResponse', client.runners.parseContextURL({ contextUrl: `file://${REPO}`, runnerId: RUNNER_ID }));
    assert(r.git?.cloneUrl || r.originalContextUrl, JSON.stringify(r));
  });

  await step('environments.create (contextUrl)', async () => {
    need('classId');
    const r = await call('EnvironmentCreateResponse', client.environments.create({
      spec: { machine: { class: state.classId }, content: { initializer: { specs: [{ contextUrl: { url: `file://${REPO}` } }] } } },
    }));
    const e = await envPhase(r.environment.id, 'ENVIRONMENT_PHASE_RUNNING');
    assert(e.metadata?.originalContextUrl, 'no metadata.originalContextUrl');
    await client.environments.delete({ environmentId: r.environment.id });
  });
}

// --- stop, start, delete ----------------------------------------------------

await step('environments.stop until STOPPED', async () => {
  need('envId');
  await client.environments.stop({ environmentId: state.envId });
  await envPhase(state.envId, 'ENVIRONMENT_PHASE_STOPPED');
});

await step('environments.start until RUNNING', async () => {
  need('envId');
  await client.environments.start({ environmentId: state.envId });
  await envPhase(state.envId, 'ENVIRONMENT_PHASE_RUNNING');
});

await step('environments.delete until NotFoundError', async () => {
  need('envId');
  await client.environments.delete({ environmentId: state.envId });
  await poll('the environment gone', async () => {
    try {
      await client.environments.retrieve({ environmentId: state.envId });
      return undefined;
    } catch (e) {
      if (e instanceof NotFoundError) return true;
      throw e;
    }
  });
});

if (failures.length) {
  console.log(`${failures.length} step(s) failed: ${failures.join(', ')}`);
  process.exit(1);
}
console.log('all steps passed');
// The SDK helpers' background loops may still hold timers.
process.exit(0);
