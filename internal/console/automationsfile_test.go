package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/internal/testutil"
)

// The files the automations file tests post.
const (
	firstFile = "services:\n  web:\n    name: Web\n    commands:\n      start: sleep 600\n"
	// typoFile misspells start on line 4.
	typoFile = "services:\n  web:\n    commands:\n      strat: sleep 600\n"
	// badDepFile depends on what is not in the file, on line 7.
	badDepFile = "services:\n  web:\n    commands:\n      start: sleep 600\ntasks:\n  build:\n    dependsOn: [web, nope]\n    command: make\n"
	goodFile   = "services:\n  web:\n    name: Web\n    commands:\n      start: sleep 600\n  db:\n    commands:\n      start: |\n        echo db\n        exec sleep 600\n" +
		"tasks:\n  build:\n    name: Build\n    command: make\n    dependsOn: [db]\n"
)

func fileForm(text string) *strings.Reader {
	return strings.NewReader(url.Values{"file": {text}}.Encode())
}

// TestConsole_AutomationsFileForm posts the automations file page's forms
// on both databases: the page shows what the last file made; a bad file,
// validated or applied, comes back with its error at its line and changes
// nothing; a file naming an API-created service is refused at that line;
// a good one applies; a read-only key may look but not apply.
func TestConsole_AutomationsFileForm(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			e := newEnv(t, backend)
			ids, autos := e.twoEnvironments(t)
			page := "/environments/" + ids[0] + "/automations"
			res, body := e.request(t, http.MethodPost, page, testutil.AdminToken, fileForm(firstFile), nil)
			if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/environments/"+ids[0] {
				t.Fatalf("apply the first file: %d %s\n%.1000s", res.StatusCode, res.Header.Get("Location"), body)
			}
			_, shown := e.request(t, http.MethodGet, page, testutil.AdminToken, nil, nil)
			if !strings.Contains(shown, "\n"+firstFile+"</textarea>") {
				t.Fatalf("the page does not show the applied file:\n%s", shown)
			}
			for _, tc := range []struct {
				name, path, file string
				status, line     int
				says             string
			}{
				{"ValidateTypo", page + "/validate", typoFile, http.StatusBadRequest, 4, `did you mean &#34;start&#34;`},
				{"ApplyTypo", page, typoFile, http.StatusBadRequest, 4, "strat: unknown field"},
				{"ApplyBadDependency", page, badDepFile, http.StatusBadRequest, 7, "is not a task or service in this file"},
				{"ApplySyntax", page, "tasks:\n  a:\n    command: x\n   name: y\n", http.StatusBadRequest, 4, "invalid YAML"},
				{"ApplyAPIItem", page, "services:\n  api-svc:\n    commands:\n      start: x\n", http.StatusConflict, 2, "created through the API"},
			} {
				if tc.name == "ApplyAPIItem" {
					if _, err := autos.CreateService(context.Background(), admin(&gitpodv1.CreateServiceRequest{
						EnvironmentId: ids[0], Metadata: &gitpodv1.ServiceMetadata{Reference: "api-svc"},
						Spec: &gitpodv1.ServiceSpec{Commands: &gitpodv1.ServiceSpec_Commands{Start: "sleep 600"}}})); err != nil {
						t.Fatalf("create service: %v", err)
					}
				}
				res, body := e.request(t, http.MethodPost, tc.path, testutil.AdminToken, fileForm(tc.file), nil)
				if res.StatusCode != tc.status || !strings.Contains(body, tc.says) ||
					!strings.Contains(body, `data-error-line="`+itoa(tc.line)+`"`) || !strings.Contains(body, "The error is on line "+itoa(tc.line)+".") {
					t.Errorf("%s: %d, want %d, saying %q at line %d:\n%.3000s", tc.name, res.StatusCode, tc.status, tc.says, tc.line, body)
				}
				if !strings.Contains(body, tc.file+"</textarea>") {
					t.Errorf("%s: the page does not show the posted file again", tc.name)
				}
			}
			if _, after := e.request(t, http.MethodGet, page, testutil.AdminToken, nil, nil); !strings.Contains(after, "\n"+firstFile+"</textarea>") {
				t.Errorf("a refused file changed the environment's file:\n%s", after)
			}
			res, body = e.request(t, http.MethodPost, page+"/validate", testutil.AdminToken, fileForm(goodFile), nil)
			if res.StatusCode != http.StatusOK || !strings.Contains(body, "applying it makes 2 services and 1 task") {
				t.Errorf("validate a good file: %d\n%.2000s", res.StatusCode, body)
			}
			res, body = e.request(t, http.MethodPost, page, testutil.AdminToken, fileForm(goodFile), nil)
			if res.StatusCode != http.StatusSeeOther {
				t.Fatalf("apply a good file: %d\n%.2000s", res.StatusCode, body)
			}
			_, envPage := e.request(t, http.MethodGet, "/environments/"+ids[0], testutil.AdminToken, nil, nil)
			for _, want := range []string{`data-service="web"`, `data-service="db"`, `data-service="api-svc"`, `data-task="build"`} {
				if !strings.Contains(envPage, want) {
					t.Errorf("after the apply the environment's page lacks %s", want)
				}
			}
			// The other environment has nothing of it.
			if _, other := e.request(t, http.MethodGet, "/environments/"+ids[1]+"/automations", testutil.AdminToken, nil, nil); strings.Contains(other, "sleep 600") {
				t.Errorf("the other environment's file shows this one's")
			}
			reader := e.createKey(t, "environments:read")
			res, body = e.request(t, http.MethodGet, page, reader, nil, nil)
			if res.StatusCode != http.StatusOK || !strings.Contains(body, " readonly") || strings.Contains(body, "Apply</button>") {
				t.Errorf("a read-only key's page: %d, want a read-only editor without Apply", res.StatusCode)
			}
			res, body = e.request(t, http.MethodPost, page, reader, fileForm(firstFile), nil)
			if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "environments:write") {
				t.Errorf("a read-only key's apply: %d\n%.1000s", res.StatusCode, body)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestConsole_AutomationsFile edits an environment's automations file in
// the browser: a typo is shown at its line (the gutter marks it, the
// cursor is on it) and changes nothing; a good file validates, applies,
// and its services and task are listed on the environment's page.
func TestConsole_AutomationsFile(t *testing.T) {
	eachDatabase(t, func(t *testing.T, backend testutil.Backend) {
		e := newEnv(t, backend)
		ids, autos := e.twoEnvironments(t)
		page := "/environments/" + ids[0] + "/automations"
		if res, body := e.request(t, http.MethodPost, page, testutil.AdminToken, fileForm(firstFile), nil); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("apply the first file: %d\n%.1000s", res.StatusCode, body)
		}
		b := newBrowser(t, e.ts.URL, "admin", nil)
		b.signInKey(testutil.AdminToken)
		b.open("/environments/" + ids[0])
		b.do(chromedp.Click(chromedp.ID("automations-link")))
		b.waitJS("the file's page opens", `location.pathname === `+jsString(page)+` && !!document.getElementById("automations-file")`)
		if got := eval[string](b, `document.getElementById("automations-file").value`); got != firstFile {
			t.Errorf("the editor shows %q, want the applied file %q", got, firstFile)
		}
		b.checkAxe("automations file")

		setFile := func(text string) {
			t.Helper()
			b.do(chromedp.SetValue(chromedp.ID("automations-file"), text))
			eval[bool](b, `document.getElementById("automations-file").dispatchEvent(new Event("input")) || true`)
		}
		setFile(typoFile)
		b.do(chromedp.Click(chromedp.CSS(`button.primary`)))
		b.waitJS("the error shows", `!!document.getElementById("error") && !!document.querySelector("#file-gutter [data-error-line]")`)
		if got := b.text("#file-gutter [data-error-line]"); got != "4" {
			t.Errorf("the gutter marks line %q, want 4", got)
		}
		if got := b.text("#error"); !strings.Contains(got, "strat: unknown field (line 4)") {
			t.Errorf("the error says %q", got)
		}
		// The cursor is on the line to fix: its text is selected.
		if got := eval[string](b, `(() => { const ta = document.getElementById("automations-file");
		return document.activeElement === ta ? ta.value.slice(ta.selectionStart, ta.selectionEnd) : "not focused" })()`); got != "      strat: sleep 600" {
			t.Errorf("the editor selects %q, want line 4", got)
		}
		if got := eval[string](b, `location.pathname`); got != page {
			t.Errorf("after a refused apply the page is %s", got)
		}
		b.shot("automations-error")
		b.checkAxe("automations file with an error")
		svcs, err := autos.ListServices(context.Background(), admin(&gitpodv1.ListServicesRequest{
			Filter: &gitpodv1.ListServicesRequest_Filter{EnvironmentIds: []string{ids[0]}}}))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(svcs.Msg.GetServices()); n != 1 || svcs.Msg.GetServices()[0].GetSpec().GetCommands().GetStart() != "sleep 600" {
			t.Errorf("a refused file changed the services: %v", svcs.Msg.GetServices())
		}

		setFile(goodFile)
		if n := eval[int](b, `document.querySelectorAll("#file-gutter span").length`); n != 15 {
			t.Errorf("the gutter numbers %d lines after the edit, want 15", n)
		}
		b.do(chromedp.Click(chromedp.CSS(`button[formaction$="/validate"]`)))
		b.waitJS("the file is valid", `(document.getElementById("file-valid")||{}).innerText?.includes("2 services and 1 task")`)
		if b.exists("#error") {
			t.Errorf("a valid file shows an error: %s", b.text("#error"))
		}
		b.do(chromedp.Click(chromedp.CSS(`button.primary`)))
		b.waitJS("the environment's page lists the file's items", `location.pathname === "/environments/`+ids[0]+`" && !!document.querySelector('tr[data-task="build"]') && !!document.querySelector('tr[data-service="db"]')`)
		b.shot("automations-applied")
	})
}
