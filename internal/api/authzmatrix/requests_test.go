package authzmatrix_test

// template is the request of a row, with placeholders that fixtures fill
// in: {org} (the first organization's name), {orgid}, {runner} (a runner's
// UUID), {runnerseq} (its REST id), {runnername}, {class}, {env}, {service},
// {task}, {execution}, {secret}, {token} (an API key's id), {pod} (a pod's
// key), {agent} (a custom agent type), {log} (a log of {runner}: the
// execution's), {manifest} (a signed manifest URL's path and query); and
// fresh for every call: {name} (a unique name), {slug}, {exchange} (an
// unused exchange token). With users: {user} (a member of the first
// organization), {invite} (an invite to it), {authkey} (an API key's secret)
// and, fresh, {freshinvite}. {asset} is the path of a console asset (its
// name carries a hash).
type template struct {
	// body is the JSON request (Connect) or body (HTTP); empty: none.
	body string
	// path replaces an HTTP row's pattern (with its placeholders) when the
	// pattern's own placeholders are not enough.
	path string
	// destructive calls name a random id instead of the fixture for the
	// caller's own organization, so that no fixture is deleted or stopped;
	// another organization's callers still name the fixture.
	destructive bool
	// freshSession makes a session caller sign in again for this call,
	// which ends or rotates the session it uses.
	freshSession bool
	// noProbe leaves out the empty request of refused callers, when an
	// empty request means something else (a user leaving, for one).
	noProbe bool
}

// templates has the request of every row, keyed by its method cell.
var templates = map[string]template{
	"gitpod.v1.RunnerService/CreateRunner":      {body: `{"name":"{name}","provider":"RUNNER_PROVIDER_LINUX_HOST"}`},
	"gitpod.v1.RunnerService/GetRunner":         {body: `{"runnerId":"{runner}"}`},
	"gitpod.v1.RunnerService/ListRunners":       {body: `{}`},
	"gitpod.v1.RunnerService/UpdateRunner":      {body: `{"runnerId":"{runner}","spec":{"configuration":{"autoUpdate":true}}}`},
	"gitpod.v1.RunnerService/DeleteRunner":      {body: `{"runnerId":"{runner}"}`, destructive: true},
	"gitpod.v1.RunnerService/CreateRunnerToken": {body: `{"runnerId":"{runner}"}`},
	"gitpod.v1.RunnerService/ParseContextURL":   {body: `{"runnerId":"{runner}","contextUrl":"https://github.com/runyard/runyard"}`},

	"gitpod.v1.IdentityService/ExchangeToken":            {body: `{"exchangeToken":"{exchange}"}`},
	"gitpod.v1.IdentityService/GetAuthenticatedIdentity": {body: `{}`},
	"gitpod.v1.IdentityService/GetIDToken":               {body: `{"audience":["https://authz.example"]}`},

	"runyard.v1.TokenService/CreateToken":           {body: `{"name":"{name}","scopes":["runners:read"]}`},
	"runyard.v1.TokenService/ListTokens":            {body: `{}`},
	"runyard.v1.TokenService/ListTokens (own)":      {body: `{"own":true}`, noProbe: true},
	"runyard.v1.TokenService/RevokeToken":           {body: `{"tokenId":"{token}"}`, destructive: true},
	"runyard.v1.TokenService/RevokeToken (own)":     {body: `{"tokenId":"{token}","own":true}`, destructive: true, noProbe: true},
	"runyard.v1.TokenService/GetAuthenticatedToken": {body: `{}`},

	"gitpod.v1.EnvironmentService/CreateEnvironment":          {body: `{"spec":{"machine":{"class":"{class}"}}}`},
	"gitpod.v1.EnvironmentService/GetEnvironment":             {body: `{"environmentId":"{env}"}`},
	"gitpod.v1.EnvironmentService/ListEnvironments":           {body: `{}`},
	"gitpod.v1.EnvironmentService/UpdateEnvironment":          {body: `{"environmentId":"{env}","metadata":{"name":"{name}"}}`},
	"gitpod.v1.EnvironmentService/StartEnvironment":           {body: `{"environmentId":"{env}"}`},
	"gitpod.v1.EnvironmentService/StopEnvironment":            {body: `{"environmentId":"{env}"}`, destructive: true},
	"gitpod.v1.EnvironmentService/DeleteEnvironment":          {body: `{"environmentId":"{env}"}`, destructive: true},
	"gitpod.v1.EnvironmentService/MarkEnvironmentActive":      {body: `{"environmentId":"{env}","activitySignal":{"source":"authz"}}`},
	"gitpod.v1.EnvironmentService/ListEnvironmentClasses":     {body: `{}`},
	"gitpod.v1.EnvironmentService/CreateEnvironmentLogsToken": {body: `{"environmentId":"{env}"}`},

	"gitpod.v1.EnvironmentAutomationService/UpsertAutomationsFile":        {body: `{"environmentId":"{env}","automationsFile":{"tasks":{"authz-file-task":{"name":"t","command":"true"}}}}`},
	"gitpod.v1.EnvironmentAutomationService/CreateService":                {body: `{"environmentId":"{env}","metadata":{"reference":"{slug}","name":"s"},"spec":{"commands":{"start":"sleep 1000"}}}`},
	"gitpod.v1.EnvironmentAutomationService/GetService":                   {body: `{"id":"{service}"}`},
	"gitpod.v1.EnvironmentAutomationService/ListServices":                 {body: `{}`},
	"gitpod.v1.EnvironmentAutomationService/UpdateService":                {body: `{"id":"{service}","metadata":{"description":"{name}"}}`},
	"gitpod.v1.EnvironmentAutomationService/UpdateService (status alone)": {body: `{"id":"{service}","status":{"output":{"authz":"1"}}}`},
	"gitpod.v1.EnvironmentAutomationService/StartService":                 {body: `{"id":"{service}"}`, destructive: true},
	"gitpod.v1.EnvironmentAutomationService/StopService":                  {body: `{"id":"{service}"}`, destructive: true},
	"gitpod.v1.EnvironmentAutomationService/DeleteService":                {body: `{"id":"{service}"}`, destructive: true},
	"gitpod.v1.EnvironmentAutomationService/CreateTask":                   {body: `{"environmentId":"{env}","metadata":{"reference":"{slug}","name":"t"},"spec":{"command":"true"}}`},
	"gitpod.v1.EnvironmentAutomationService/GetTask":                      {body: `{"id":"{task}"}`},
	"gitpod.v1.EnvironmentAutomationService/ListTasks":                    {body: `{}`},
	"gitpod.v1.EnvironmentAutomationService/UpdateTask":                   {body: `{"id":"{task}","metadata":{"description":"{name}"}}`},
	"gitpod.v1.EnvironmentAutomationService/DeleteTask":                   {body: `{"id":"{task}"}`, destructive: true},
	"gitpod.v1.EnvironmentAutomationService/StartTask":                    {body: `{"id":"{task}"}`},
	"gitpod.v1.EnvironmentAutomationService/GetTaskExecution":             {body: `{"id":"{execution}"}`},
	"gitpod.v1.EnvironmentAutomationService/ListTaskExecutions":           {body: `{}`},
	"gitpod.v1.EnvironmentAutomationService/StopTaskExecution":            {body: `{"id":"{execution}"}`, destructive: true},
	"runyard.v1.AutomationsService/ReloadAutomationsFile":                 {body: `{"environmentId":"{env}"}`},

	"gitpod.v1.PrebuildService/CreatePrebuild": {body: `{"contextUrl":"https://github.com/runyard/runyard","environmentClassId":"{class}"}`},
	"gitpod.v1.PrebuildService/GetPrebuild":    {body: `{"prebuildId":"{prebuild}"}`},
	"gitpod.v1.PrebuildService/ListPrebuilds":  {body: `{}`},
	"gitpod.v1.PrebuildService/CancelPrebuild": {body: `{"prebuildId":"{prebuild}"}`, destructive: true},
	"gitpod.v1.PrebuildService/DeletePrebuild": {body: `{"prebuildId":"{prebuild}"}`, destructive: true},

	"runyard.v1.PrebuildScheduleService/CreatePrebuildSchedule": {body: `{"contextUrl":"https://github.com/runyard/runyard","environmentClassId":"{class}","interval":"86400s"}`},
	"runyard.v1.PrebuildScheduleService/ListPrebuildSchedules":  {body: `{}`},
	"runyard.v1.PrebuildScheduleService/DeletePrebuildSchedule": {body: `{"scheduleId":"{schedule}"}`, destructive: true},

	"gitpod.v1.SecretService/CreateSecret":      {body: `{"name":"{slug}","value":"v","scope":{"organizationId":"{orgid}"}}`},
	"gitpod.v1.SecretService/ListSecrets":       {body: `{}`},
	"gitpod.v1.SecretService/UpdateSecretValue": {body: `{"secretId":"{secret}","value":"v2"}`},
	"gitpod.v1.SecretService/DeleteSecret":      {body: `{"secretId":"{secret}"}`, destructive: true},

	"gitpod.v1.EventService/WatchEvents":               {body: `{"organization":true}`},
	"gitpod.v1.EventService/WatchEvents (environment)": {body: `{"environmentId":"{env}"}`},
	"gitpod.v1.EventService/ListAuditLogs":             {body: `{}`},

	"gitpod.v1.OrganizationService/CreateOrganization": {body: `{"name":"{name}"}`},
	"gitpod.v1.OrganizationService/GetOrganization":    {body: `{"organizationId":"{orgid}"}`},
	// Renaming to the same name changes nothing the other calls need.
	"gitpod.v1.OrganizationService/UpdateOrganization": {body: `{"organizationId":"{orgid}","name":"{org}"}`},
	// The first organization holds the installation admin's key: deleting
	// it is refused (failed_precondition) even to the installation admin.
	"gitpod.v1.OrganizationService/DeleteOrganization": {body: `{"organizationId":"{orgid}"}`},
	"runyard.v1.InstallationService/ListOrganizations": {body: `{}`},

	// A sign-in ends the session whose cookie it came with; switching
	// rotates the session and signing out ends it: each call of a session
	// gets a session of its own.
	"POST /auth/password": {body: `{"email":"authz-victim@example.com","password":"authz-password-0123456789"}`, freshSession: true},
	"POST /auth/key":      {body: `{"key":"{authkey}"}`, freshSession: true},
	"GET /auth/session":   {},
	"POST /auth/switch":   {body: `{"organizationId":"{orgid}"}`, freshSession: true},
	"POST /auth/signout":  {body: `{}`, freshSession: true},

	"gitpod.v1.UserService/GetAuthenticatedUser":                 {body: `{}`},
	"gitpod.v1.UserService/GetUser":                              {body: `{"userId":"{user}"}`},
	"gitpod.v1.UserService/SetSuspended":                         {body: `{"userId":"{user}","suspended":false}`},
	"runyard.v1.UserAdminService/CreateUser":                     {body: `{"email":"{name}@example.com","name":"n","password":"authz-password-0123456789","organizationId":"{orgid}","role":"member"}`},
	"runyard.v1.UserAdminService/ListUsers":                      {body: `{}`},
	"runyard.v1.UserAdminService/SetPassword":                    {body: `{"userId":"{user}","password":"authz-password-0123456789"}`},
	"runyard.v1.SSHKeyService/AddSSHKey":                         {body: `{"publicKey":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID6M8k05cSDBrBQIqK7QTJJq2wRnKHRXH6Te1OsFP+US authz"}`},
	"runyard.v1.SSHKeyService/ListSSHKeys":                       {body: `{}`},
	"runyard.v1.SSHKeyService/DeleteSSHKey":                      {body: `{"sshKeyId":"00000000-0000-4000-8000-0000000000ff"}`},
	"runyard.v1.UserAdminService/ChangePassword":                 {body: `{"currentPassword":"authz-password-0123456789","newPassword":"short"}`},
	"runyard.v1.UserAdminService/AddMember":                      {body: `{"organizationId":"{orgid}","userId":"{user}","role":"member"}`},
	"runyard.v1.UserAdminService/RemoveMember":                   {body: `{"organizationId":"{orgid}","userId":"{user}"}`, destructive: true, noProbe: true},
	"runyard.v1.UserAdminService/SetMemberRole":                  {body: `{"organizationId":"{orgid}","userId":"{user}","role":"member"}`},
	"runyard.v1.UserAdminService/ListOrganizationMembers":        {body: `{"organizationId":"{orgid}"}`},
	"runyard.v1.UserAdminService/CreateInvite":                   {body: `{"organizationId":"{orgid}","role":"member"}`},
	"runyard.v1.UserAdminService/ListInvites":                    {body: `{"organizationId":"{orgid}"}`},
	"runyard.v1.UserAdminService/RevokeInvite":                   {body: `{"organizationId":"{orgid}","id":"{user}"}`, destructive: true},
	"runyard.v1.UserAdminService/AcceptInvite":                   {body: `{"inviteId":"{freshinvite}","email":"{name}@example.com","name":"n","password":"authz-password-0123456789"}`},
	"gitpod.v1.OrganizationService/ListMembers":                  {body: `{"organizationId":"{orgid}"}`},
	"gitpod.v1.OrganizationService/SetRole":                      {body: `{"organizationId":"{orgid}","userId":"{user}","role":"ORGANIZATION_ROLE_MEMBER"}`},
	"gitpod.v1.OrganizationService/CreateOrganizationInvite":     {body: `{"organizationId":"{orgid}"}`},
	"gitpod.v1.OrganizationService/GetOrganizationInvite":        {body: `{"organizationId":"{orgid}"}`},
	"gitpod.v1.OrganizationService/GetOrganizationInviteSummary": {body: `{"inviteId":"{invite}"}`},
	"gitpod.v1.OrganizationService/JoinOrganization":             {body: `{"inviteId":"{freshinvite}"}`},
	"gitpod.v1.OrganizationService/LeaveOrganization":            {body: `{"userId":"{user}"}`, destructive: true, noProbe: true},

	"runyard.runner.v1.RunnerControlService/Connect":             {body: `{}`},
	"runyard.runner.v1.RunnerControlService/Terminal":            {body: `{}`},
	"runyard.runner.v1.RunnerControlService/StartAutomations":    {body: `{"environmentId":"{env}"}`},
	"runyard.runner.v1.RunnerControlService/ReportRunnerMetrics": {body: `{}`},
	"runyard.runner.v1.RunnerControlService/Session":             {body: `{}`},

	"GET /api/v1/orgs/{org}/runners":                        {},
	"GET /api/v1/orgs/{org}/runners/available":              {},
	"GET /api/v1/orgs/{org}/runners/{id}":                   {path: "/api/v1/orgs/{org}/runners/{runnerseq}"},
	"GET /api/v1/orgs/{org}/runners/{id}/pods":              {path: "/api/v1/orgs/{org}/runners/{runnerseq}/pods"},
	"POST /api/v1/orgs/{org}/pods":                          {body: `{"agent_type_id":"{agent}","initial_prompt":"authz"}`},
	"GET /api/v1/orgs/{org}/pods":                           {},
	"GET /api/v1/orgs/{org}/pods/{key}":                     {path: "/api/v1/orgs/{org}/pods/{pod}"},
	"POST /api/v1/orgs/{org}/pods/{key}/terminate":          {path: "/api/v1/orgs/{org}/pods/{pod}/terminate", destructive: true},
	"GET /api/v1/orgs/{org}/pods/{key}/output":              {path: "/api/v1/orgs/{org}/pods/{pod}/output"},
	"GET /api/v1/orgs/{org}/pods/{key}/output?follow=1":     {path: "/api/v1/orgs/{org}/pods/{pod}/output?follow=1"},
	"GET /api/v1/orgs/{org}/agents":                         {},
	"POST /api/v1/orgs/{org}/agents":                        {body: `{"id":"{slug}","name":"{name}","command":["sh","-c","true"]}`},
	"GET /api/v1/orgs/{org}/agents/{id}":                    {path: "/api/v1/orgs/{org}/agents/{agent}"},
	"PATCH /api/v1/orgs/{org}/agents/{id}":                  {path: "/api/v1/orgs/{org}/agents/{agent}", body: `{"name":"{name}"}`},
	"DELETE /api/v1/orgs/{org}/agents/{id}":                 {path: "/api/v1/orgs/{org}/agents/{agent}", destructive: true},
	"GET /api/v1/orgs/{org}/pods/{key}/terminal":            {path: "/api/v1/orgs/{org}/pods/{pod}/terminal"},
	"GET /api/v1/orgs/{org}/pods/{key}/terminal?readonly=1": {path: "/api/v1/orgs/{org}/pods/{pod}/terminal?readonly=1"},
	"GET /api/v1/orgs/{org}/environments/{id}/exec":         {path: "/api/v1/orgs/{org}/environments/{env}/exec?command=true"},
	"GET /api/v1/orgs/{org}/environments/{id}/port-forward": {path: "/api/v1/orgs/{org}/environments/{env}/port-forward?port=1"},
	"GET /internal/replica/session":                         {path: "/internal/replica/session?org={orgid}&runner={runner}"},
	"GET /api/v3/runners":                                   {},
	"GET /v1/runners/{name}/describe":                       {path: "/v1/runners/{runnername}/describe"},
	"GET /api/v3/runners/{name}/health":                     {path: "/api/v3/runners/{runnername}/health"},
	"POST /api/v3/runners/{name}":                           {path: "/api/v3/runners/{slug}"},
	"GET /v1/runners/{name}/manifest":                       {path: "/v1/runners/{runnername}/manifest"},
	"GET /api/v3/manifests/{file}":                          {path: "{manifest}"},
	"GET /logs/{runner}/{log}":                              {path: "/logs/{runner}/{log}"},
	"GET /logs/{runner}/{log}?follow=1":                     {path: "/logs/{runner}/{log}?follow=1"},
	"GET /runners/{runner}/log":                             {path: "/runners/{runner}/log"},
	"GET /runners/{runner}/support-bundle":                  {path: "/runners/{runner}/support-bundle"},
	"POST /api/v1/releases/{channel}":                       {path: "/api/v1/releases/stable", body: `{}`},
	"GET /api/v1/releases":                                  {},
	"GET /runner/v1/releases/{channel}/{file}":              {path: "/runner/v1/releases/stable/runyard_v1_linux_amd64.tar.gz"},
	"GET /auth/oidc/login":                                  {},
	"GET /auth/oidc/callback":                               {path: "/auth/oidc/callback?state=authz&code=authz"},

	// Console actions post forms; ids are the fixtures' as in the API rows.
	"GET /{$}":                                      {path: "/"},
	"GET /signin":                                   {},
	"GET /runners":                                  {},
	"GET /runners/{id}":                             {path: "/runners/{runner}"},
	"POST /runners/{id}/drain":                      {path: "/runners/{runner}/drain", destructive: true},
	"POST /runners/{id}/resume":                     {path: "/runners/{runner}/resume"},
	"POST /runners/{id}/delete":                     {path: "/runners/{runner}/delete", destructive: true},
	"POST /runners/{id}/token":                      {path: "/runners/{runner}/token"},
	"GET /pods":                                     {},
	"GET /pods/new":                                 {},
	"POST /pods/new":                                {body: "agent_type_id={agent}&initial_prompt=authz"},
	"GET /pods/{key}":                               {path: "/pods/{pod}"},
	"POST /pods/{key}/terminate":                    {path: "/pods/{pod}/terminate", destructive: true},
	"GET /environments":                             {},
	"GET /environments/new":                         {},
	"POST /environments/new":                        {body: "name={name}&class={class}"},
	"GET /environments/{id}":                        {path: "/environments/{env}"},
	"GET /environments/{id}/logs/{kind}/{item}":     {path: "/environments/{env}/logs/execution/{execution}"},
	"POST /environments/{id}/start":                 {path: "/environments/{env}/start"},
	"POST /environments/{id}/stop":                  {path: "/environments/{env}/stop", destructive: true},
	"POST /environments/{id}/services/{item}/start": {path: "/environments/{env}/services/{service}/start", destructive: true},
	"POST /environments/{id}/services/{item}/stop":  {path: "/environments/{env}/services/{service}/stop", destructive: true},
	"POST /environments/{id}/tasks/{item}/start":    {path: "/environments/{env}/tasks/{task}/start"},
	"GET /console/events":                           {},
	"GET /console/events?environment={id}":          {path: "/console/events?environment={env}"},
	"GET /console/assets/{file}":                    {path: "{asset}"},
	"GET /environments/{id}/automations":            {path: "/environments/{env}/automations"},
	"POST /environments/{id}/automations":           {path: "/environments/{env}/automations", destructive: true},
	"POST /environments/{id}/automations/validate":  {path: "/environments/{env}/automations/validate"},
	"GET /secrets":                                  {},
	"POST /secrets/new":                             {body: "name={slug}&value=v&mount=none"},
	"POST /secrets/{id}/value":                      {path: "/secrets/{secret}/value", body: "value=v2"},
	"POST /secrets/{id}/delete":                     {path: "/secrets/{secret}/delete", destructive: true},
	"GET /agents":                                   {},
	"POST /agents/new":                              {body: "id={slug}&name={name}&command=sh"},
	"POST /agents/{id}/delete":                      {path: "/agents/{agent}/delete", destructive: true},
	"POST /agents/{id}/edit":                        {path: "/agents/{agent}/edit", body: "name={name}&command=sh"},

	// The CLI's browser login: a page of a session, its approval (the
	// challenge is the S256 of the empty verifier) and the redemption of a
	// code that is none.
	"GET /auth/cli/approve":       {path: "/auth/cli/approve?port=40000&state=authz-state-0123456789&challenge=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU&name=authz"},
	"POST /auth/cli/approve":      {body: `{}`},
	"POST /auth/cli/token":        {body: `{"code":"authz","verifier":"authz"}`},
	"GET /orgs":                   {},
	"POST /orgs/new":              {body: "name={name}"},
	"POST /orgs/{id}/rename":      {path: "/orgs/{orgid}/rename", body: "name={org}"},
	"POST /orgs/{id}/delete":      {path: "/orgs/{orgid}/delete", destructive: true},
	"GET /members":                {},
	"POST /members/add":           {body: "email={slug}@example.com&role=member"},
	"POST /members/{id}/role":     {path: "/members/{user}/role", body: "role=member"},
	"POST /members/{id}/remove":   {path: "/members/{user}/remove", destructive: true},
	"POST /members/{id}/disable":  {path: "/members/{user}/disable", destructive: true},
	"POST /members/{id}/enable":   {path: "/members/{user}/enable"},
	"POST /members/{id}/password": {path: "/members/{user}/password", body: "password=authz-password-0123456789", destructive: true},
	"POST /invites/new":           {body: "role=member"},
	"POST /invites/{id}/revoke":   {path: "/invites/{user}/revoke"},
	"GET /keys":                   {},
	"POST /keys/new":              {body: "name={name}&scopes=runners:read"},
	"POST /keys/{id}/revoke":      {path: "/keys/{token}/revoke", destructive: true},
	"GET /audit":                  {},

	"GET /healthz":                          {},
	"GET /version":                          {},
	"GET /metrics":                          {},
	"GET /.well-known/openid-configuration": {},
	"GET /.well-known/jwks.json":            {},

	// A preview host's sign-in through the console: the matrix's server
	// serves no previews, so an allowed caller learns only that.
	"GET /environments/{id}/ports/{port}/preview": {path: "/environments/{env}/ports/3000/preview?state=authz&next=/"},
}
