package cli

import "github.com/spf13/cobra"

// examples are the help examples of the commands that do not carry their
// own, by command path below "runyard". A command's own Example wins; a
// test checks that every command ends up with one.
var examples = map[string]string{
	"invites":                    "  runyard invites create --role member",
	"members":                    "  runyard members list\n  runyard members add ada@example.com --role member",
	"members list":               "  runyard members list -o json",
	"members remove":             "  runyard members remove ada@example.com --yes",
	"users":                      "  runyard users list\n  echo 'a long passphrase' | runyard users create --email ada@example.com --password-stdin --org acme --role member",
	"users disable":              "  runyard users disable ada@example.com --yes",
	"users enable":               "  runyard users enable ada@example.com",
	"users list":                 "  runyard users list -o yaml",
	"agents":                     "  runyard agents list\n  runyard agents get claude-code",
	"agents delete":              "  runyard agents delete my-agent --yes",
	"agents get":                 "  runyard agents get claude-code -o yaml",
	"agents list":                "  runyard agents list\n  runyard agents list --jq '.builtin_agents[].id'",
	"audit":                      "  runyard audit list --since 24h",
	"automations":                "  runyard automations validate -f .runyard/automations.yaml\n  runyard automations reload $ENVIRONMENT_ID",
	"completion":                 "  source <(runyard completion bash)\n  runyard completion zsh > \"${fpath[1]}/_runyard\"",
	"completion bash":            "  source <(runyard completion bash)\n  runyard completion bash > /etc/bash_completion.d/runyard",
	"completion fish":            "  runyard completion fish > ~/.config/fish/completions/runyard.fish",
	"completion powershell":      "  runyard completion powershell | Out-String | Invoke-Expression",
	"completion zsh":             "  runyard completion zsh > \"${fpath[1]}/_runyard\"",
	"environments":               "  runyard environments list\n  runyard environments create --git https://github.com/me/app --wait",
	"environments delete":        "  runyard environments delete $ENVIRONMENT_ID --wait --yes",
	"environments get":           "  runyard environments get $ENVIRONMENT_ID -o yaml",
	"environments list":          "  runyard environments list --phase running\n  runyard environments list -o jsonpath='{.environments[*].id}'",
	"environments start":         "  runyard environments start $ENVIRONMENT_ID --wait",
	"environments stop":          "  runyard environments stop $ENVIRONMENT_ID --wait",
	"executions":                 "  runyard executions list\n  runyard executions get $EXECUTION_ID",
	"executions get":             "  runyard executions get $EXECUTION_ID -o json",
	"executions stop":            "  runyard executions stop $EXECUTION_ID",
	"orgs":                       "  runyard orgs list\n  runyard orgs create acme",
	"orgs delete":                "  runyard orgs delete acme --yes",
	"orgs list":                  "  runyard orgs list -o yaml",
	"pods":                       "  runyard pods list\n  runyard pods create --agent claude-code --prompt 'fix the flaky test'",
	"pods attach":                "  runyard pods attach $POD_KEY",
	"pods get":                   "  runyard pods get $POD_KEY -o yaml",
	"pods logs":                  "  runyard pods logs $POD_KEY -f",
	"pods terminate":             "  runyard pods terminate $POD_KEY --yes",
	"runners":                    "  runyard runners list\n  runyard runners create --name build-1 --provider linux-host",
	"runners delete":             "  runyard runners delete $RUNNER_ID --yes\n  runyard runners delete $RUNNER_ID --force --yes",
	"runners get":                "  runyard runners get $RUNNER_ID\n  runyard runners get $RUNNER_ID -o json",
	"runners list":               "  runyard runners list -o wide\n  runyard runners list --provider linux-host --jq '.runners[].name'",
	"runners token":              "  runyard runners token $RUNNER_ID",
	"secrets":                    "  runyard secrets list\n  runyard secrets create --name NPM_TOKEN --env-var --value-file token.txt",
	"secrets delete":             "  runyard secrets delete $SECRET_ID --yes",
	"secrets list":               "  runyard secrets list --organization -o json",
	"server":                     "  runyard server --listen 0.0.0.0:8080 --data-dir /var/lib/runyard\n  runyard server --database postgres://runyard@db/runyard --tls-cert cert.pem --tls-key key.pem",
	"services":                   "  runyard services list --environment $ENVIRONMENT_ID\n  runyard services start $SERVICE_ID --wait",
	"tasks":                      "  runyard tasks list --environment $ENVIRONMENT_ID\n  runyard tasks start $TASK_ID --wait",
	"tasks logs":                 "  runyard tasks logs $EXECUTION_ID -f",
	"tokens":                     "  runyard tokens list\n  runyard tokens create --name ci --scopes runners:read",
	"tokens list":                "  runyard tokens list --all -o json",
	"tokens revoke":              "  runyard tokens revoke $TOKEN_ID --yes",
	"ssh-keys":                   "  runyard ssh-keys add ~/.ssh/id_ed25519.pub\n  runyard ssh-keys list",
	"ssh-keys add":               "  runyard ssh-keys add ~/.ssh/id_ed25519.pub --name laptop\n  ssh-add -L | head -1 | runyard ssh-keys add -",
	"ssh-keys list":              "  runyard ssh-keys list -o wide",
	"ssh-keys delete":            "  runyard ssh-keys delete laptop --yes\n  runyard ssh-keys delete SHA256:... --yes",
	"up":                         "  runyard up\n  runyard up --listen 127.0.0.1:9090 --max-pods 4",
	"whoami":                     "  runyard whoami\n  runyard whoami -o json",
	"prebuilds":                  "  runyard prebuilds create --context-url https://github.com/org/repo/tree/main --runner build-host --wait\n  runyard prebuilds list",
	"prebuilds create":           "  runyard prebuilds create --context-url https://github.com/org/repo --runner build-host --wait\n  runyard prebuilds create --context-url /srv/repos/app --class $CLASS_ID --timeout 30m -o json",
	"prebuilds list":             "  runyard prebuilds list --phase completed\n  runyard prebuilds list --context-url https://github.com/org/repo -o wide",
	"prebuilds get":              "  runyard prebuilds get $PREBUILD_ID -o json",
	"prebuilds cancel":           "  runyard prebuilds cancel $PREBUILD_ID",
	"prebuilds delete":           "  runyard prebuilds delete $PREBUILD_ID --yes",
	"prebuilds schedules":        "  runyard prebuilds schedules create --context-url https://github.com/org/repo --runner build-host --every 6h\n  runyard prebuilds schedules list",
	"prebuilds schedules create": "  runyard prebuilds schedules create --context-url https://github.com/org/repo/tree/main --runner build-host --every 24h",
	"prebuilds schedules list":   "  runyard prebuilds schedules list -o json",
	"prebuilds schedules delete": "  runyard prebuilds schedules delete $SCHEDULE_ID --yes",
	"keys revoke":                "  runyard keys revoke laptop --yes",
}

// addExamples gives each command without an example its entry of examples.
func addExamples(root *cobra.Command) {
	walk(root, func(c *cobra.Command) {
		if c.Example != "" || c == root {
			return
		}
		path := c.CommandPath()[len(root.Name())+1:]
		c.Example = examples[path]
	})
}
