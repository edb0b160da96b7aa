package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"charm.land/bubbles/v2/table"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
)

// This file is `runyard status`: one live terminal view of the
// organization's runners, environments, services, task executions and pods
// (bubbletea v2, bubbles' table and viewport, lipgloss; v1 of bubbletea
// queries the terminal when the binary starts, whatever the command, so v2),
// in the spirit of k9s
// and process-compose. It reads what the list commands read, again whenever
// the change feed (feed.go) signals a change, and pods every 2 s (they have
// no events). A service's or execution's log streams into the view; `a`
// hands the terminal to `runyard pods attach` and takes it back after.

// statusTabs are the views, in tab order.
var statusTabs = []string{"Runners", "Environments", "Services", "Executions", "Pods"}

const (
	tabRunners = iota
	tabEnvironments
	tabServices
	tabExecutions
	tabPods
)

// statusRow is one resource on screen.
type statusRow struct {
	id     string
	envID  string
	cells  []string
	detail string
}

// statusData is one read of everything.
type statusData struct {
	rows [5][]statusRow
	// err is the last read's failure, shown in the footer; the rows are
	// the last good read's.
	err error
}

type (
	statusDataMsg    statusData
	statusRefreshMsg struct{}
	statusPodsMsg    struct{}
	statusLogMsg     struct{ text string }
	statusExecMsg    struct{ err error }
)

// statusColumns are each view's columns (title, width).
var statusColumns = [5][]table.Column{
	{{Title: "ID", Width: 36}, {Title: "NAME", Width: 20}, {Title: "PHASE", Width: 10}, {Title: "VERSION", Width: 10}, {Title: "MESSAGE", Width: 30}},
	{{Title: "ID", Width: 36}, {Title: "NAME", Width: 20}, {Title: "PHASE", Width: 10}, {Title: "DESIRED", Width: 10}, {Title: "RUNNER", Width: 36}},
	{{Title: "ID", Width: 36}, {Title: "REFERENCE", Width: 16}, {Title: "PHASE", Width: 10}, {Title: "ENVIRONMENT", Width: 36}, {Title: "FAILURE", Width: 24}},
	{{Title: "ID", Width: 36}, {Title: "TASK", Width: 16}, {Title: "PHASE", Width: 10}, {Title: "STEPS", Width: 6}, {Title: "FAILURE", Width: 30}},
	{{Title: "KEY", Width: 24}, {Title: "STATUS", Width: 11}, {Title: "AGENT", Width: 14}, {Title: "RUNNER", Width: 7}, {Title: "REASON", Width: 30}},
}

var (
	styleTitle    = lipgloss.NewStyle().Bold(true)
	styleTab      = lipgloss.NewStyle().Padding(0, 1)
	styleTabOn    = lipgloss.NewStyle().Padding(0, 1).Bold(true).Reverse(true)
	styleDim      = lipgloss.NewStyle().Faint(true)
	styleErr      = lipgloss.NewStyle().Foreground(lipgloss.Color("1"))
	styleSelected = lipgloss.NewStyle().Bold(true).Reverse(true)
)

func newStatusCmd(g *globals) *cobra.Command {
	var org string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "A live terminal view of runners, environments, services, executions and pods",
		Long: `A live terminal view of the organization's runners, environments, services,
task executions and pods, updated as they change (through the control plane's
change feed; pods every 2 s).

Keys: tab / shift+tab or ←/→ (1-5) switch views; ↑/↓ (k/j) select; enter
shows the selected resource; l shows the log of a service or task execution
(followed); a attaches this terminal to a pod (detach as 'runyard pods attach'
says); esc goes back; q quits.`,
		Example: `  runyard status
  runyard status --context prod`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !term.IsTerminal(int(os.Stdout.Fd())) || !term.IsTerminal(int(os.Stdin.Fd())) {
				return usagef("runyard status needs a terminal; for scripts use `runyard <noun> list --watch`")
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			src, err := g.statusSource(ctx, org)
			if err != nil {
				return err
			}
			f, err := g.openFeed(ctx, feedKinds{
				org: []gitpodv1.ResourceType{gitpodv1.ResourceType_RESOURCE_TYPE_RUNNER, gitpodv1.ResourceType_RESOURCE_TYPE_ENVIRONMENT},
				env: []gitpodv1.ResourceType{gitpodv1.ResourceType_RESOURCE_TYPE_SERVICE, gitpodv1.ResourceType_RESOURCE_TYPE_TASK_EXECUTION},
			})
			if err != nil {
				return err
			}
			m := newStatusModel(g, src, f.Polling)
			p := tea.NewProgram(m, tea.WithContext(ctx))
			m.send = p.Send
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-f.C:
						p.Send(statusRefreshMsg{})
					}
				}
			}()
			_, err = p.Run()
			if err != nil && ctx.Err() != nil && cmd.Context().Err() != nil {
				return cmd.Context().Err()
			}
			return err
		},
	}
	cmd.Flags().StringVar(&org, "org", "default", "organization of the pods")
	return cmd
}

// statusSource reads what the status view shows.
type statusSource struct {
	g    *globals
	c    *clients
	env  *envClients
	rest *restClient
	org  string
}

func (g *globals) statusSource(ctx context.Context, org string) (*statusSource, error) {
	c, err := g.clients()
	if err != nil {
		return nil, err
	}
	ec, err := g.envClients()
	if err != nil {
		return nil, err
	}
	rc, err := g.restClient(org)
	if err != nil {
		return nil, err
	}
	// A wrong key fails here, before the screen is taken.
	if _, err := c.identity.GetAuthenticatedIdentity(ctx, connect.NewRequest(&gitpodv1.GetAuthenticatedIdentityRequest{})); err != nil {
		return nil, err
	}
	return &statusSource{g: g, c: c, env: ec, rest: rc, org: org}, nil
}

func protoDetail(m proto.Message) string {
	// protojson's own indentation varies its spacing on purpose; the
	// standard library's is stable.
	raw, err := protojson.Marshal(m)
	if err != nil {
		return err.Error()
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}

// read reads every view (only pods when podsOnly), keeping prev's rows of
// a view whose read failed.
func (s *statusSource) read(ctx context.Context, prev statusData, podsOnly bool) statusData {
	d := prev
	d.err = nil
	fail := func(err error) {
		if d.err == nil {
			d.err = err
		}
	}
	if !podsOnly {
		if rows, err := s.runners(ctx); err != nil {
			fail(err)
		} else {
			d.rows[tabRunners] = rows
		}
		if rows, err := s.environments(ctx); err != nil {
			fail(err)
		} else {
			d.rows[tabEnvironments] = rows
		}
		if rows, err := s.services(ctx); err != nil {
			fail(err)
		} else {
			d.rows[tabServices] = rows
		}
		if rows, err := s.executions(ctx); err != nil {
			fail(err)
		} else {
			d.rows[tabExecutions] = rows
		}
	}
	if rows, err := s.pods(ctx); err != nil {
		fail(err)
	} else {
		d.rows[tabPods] = rows
	}
	return d
}

func (s *statusSource) runners(ctx context.Context) ([]statusRow, error) {
	var rows []statusRow
	token := ""
	for range 100 {
		res, err := s.c.runners.ListRunners(ctx, connect.NewRequest(&gitpodv1.ListRunnersRequest{Pagination: &gitpodv1.PaginationRequest{Token: token, PageSize: 100}}))
		if err != nil {
			return nil, err
		}
		for _, r := range res.Msg.GetRunners() {
			rows = append(rows, statusRow{id: r.GetRunnerId(), detail: protoDetail(r), cells: []string{
				r.GetRunnerId(), r.GetName(), enumShort("RUNNER_PHASE_", r.GetStatus().GetPhase().String()),
				dash(r.GetStatus().GetVersion()), dash(oneLine(r.GetStatus().GetMessage())),
			}})
		}
		if token = res.Msg.GetPagination().GetNextToken(); token == "" {
			break
		}
	}
	return rows, nil
}

func (s *statusSource) environments(ctx context.Context) ([]statusRow, error) {
	var rows []statusRow
	token := ""
	for range 100 {
		res, err := s.env.envs.ListEnvironments(ctx, connect.NewRequest(&gitpodv1.ListEnvironmentsRequest{Pagination: &gitpodv1.PaginationRequest{Token: token, PageSize: 100}}))
		if err != nil {
			return nil, err
		}
		for _, e := range res.Msg.GetEnvironments() {
			rows = append(rows, statusRow{id: e.GetId(), envID: e.GetId(), detail: protoDetail(e), cells: []string{
				e.GetId(), dash(e.GetMetadata().GetName()), envPhase(e.GetStatus().GetPhase()),
				envPhase(e.GetSpec().GetDesiredPhase()), dash(e.GetMetadata().GetRunnerId()),
			}})
		}
		if token = res.Msg.GetPagination().GetNextToken(); token == "" {
			break
		}
	}
	return rows, nil
}

func (s *statusSource) services(ctx context.Context) ([]statusRow, error) {
	all, err := listServices(ctx, s.env, &gitpodv1.ListServicesRequest_Filter{})
	if err != nil {
		return nil, err
	}
	rows := make([]statusRow, 0, len(all))
	for _, sv := range all {
		rows = append(rows, statusRow{id: sv.GetId(), envID: sv.GetEnvironmentId(), detail: protoDetail(sv), cells: []string{
			sv.GetId(), sv.GetMetadata().GetReference(), servicePhase(sv.GetStatus().GetPhase()),
			sv.GetEnvironmentId(), dash(oneLine(sv.GetStatus().GetFailureMessage())),
		}})
	}
	return rows, nil
}

func (s *statusSource) executions(ctx context.Context) ([]statusRow, error) {
	var all []*gitpodv1.TaskExecution
	token := ""
	for range 100 {
		res, err := s.env.autos.ListTaskExecutions(ctx, connect.NewRequest(&gitpodv1.ListTaskExecutionsRequest{Pagination: &gitpodv1.PaginationRequest{Token: token, PageSize: 100}}))
		if err != nil {
			return nil, err
		}
		all = append(all, res.Msg.GetTaskExecutions()...)
		if token = res.Msg.GetPagination().GetNextToken(); token == "" {
			break
		}
	}
	var envs []string
	seen := map[string]bool{}
	for _, x := range all {
		if e := x.GetMetadata().GetEnvironmentId(); !seen[e] {
			seen[e] = true
			envs = append(envs, e)
		}
	}
	names, err := refNames(ctx, s.env, envs)
	if err != nil {
		return nil, err
	}
	rows := make([]statusRow, 0, len(all))
	for _, x := range all {
		md := x.GetMetadata()
		rows = append(rows, statusRow{id: x.GetId(), envID: md.GetEnvironmentId(), detail: protoDetail(x), cells: []string{
			x.GetId(), strings.TrimPrefix(nameOr(names, md.GetTaskId(), "task"), "task "), execPhase(x.GetStatus().GetPhase()),
			stepCount(x), dash(oneLine(x.GetStatus().GetFailureMessage())),
		}})
	}
	return rows, nil
}

func (s *statusSource) pods(ctx context.Context) ([]statusRow, error) {
	q := url.Values{"limit": {"100"}, "offset": {"0"}}
	raw, err := s.rest.do(ctx, http.MethodGet, "/pods", q, nil)
	if err != nil {
		return nil, err
	}
	var page struct {
		Pods []json.RawMessage `json:"pods"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		return nil, fmt.Errorf("decode pods: %w", err)
	}
	rows := make([]statusRow, 0, len(page.Pods))
	for _, item := range page.Pods {
		var p restPod
		if err := json.Unmarshal(item, &p); err != nil {
			return nil, fmt.Errorf("decode pod: %w", err)
		}
		var pretty strings.Builder
		if b, err := json.MarshalIndent(json.RawMessage(item), "", "  "); err == nil {
			pretty.Write(b)
		}
		rows = append(rows, statusRow{id: p.Key, detail: pretty.String(), cells: []string{
			p.Key, podStatus(&p), p.AgentTypeID, runnerCell(p.RunnerID), dash(oneLine(p.Reason)),
		}})
	}
	return rows, nil
}

// statusMode is what the screen shows besides the tables.
type statusMode int

const (
	modeTable statusMode = iota
	modeDetail
	modeLog
)

type statusModel struct {
	g       *globals
	src     *statusSource
	send    func(tea.Msg)
	polling bool

	tab    int
	tables [5]table.Model
	data   statusData
	loaded bool
	reads  int
	// reading is set while a read runs; another signal meanwhile sets
	// again, so one more read follows.
	reading, again bool

	mode     statusMode
	view     viewport.Model
	viewName string
	// log is the text of the log view; logCancel stops its stream.
	logMu     *sync.Mutex
	log       *strings.Builder
	logCancel context.CancelFunc
	note      string

	width, height int
}

func newStatusModel(g *globals, src *statusSource, polling bool) *statusModel {
	m := &statusModel{g: g, src: src, polling: polling, width: 120, height: 30, logMu: &sync.Mutex{}}
	for i := range m.tables {
		t := table.New(table.WithColumns(statusColumns[i]), table.WithFocused(true))
		st := table.DefaultStyles()
		st.Header = st.Header.Bold(true)
		st.Selected = styleSelected
		t.SetStyles(st)
		m.tables[i] = t
	}
	m.view = viewport.New(viewport.WithWidth(120), viewport.WithHeight(20))
	return m
}

func (m *statusModel) Init() tea.Cmd {
	m.reading = true
	return tea.Batch(m.readCmd(false), m.podsTick())
}

func (m *statusModel) podsTick() tea.Cmd {
	return tea.Tick(feedPollInterval, func(time.Time) tea.Msg { return statusPodsMsg{} })
}

func (m *statusModel) readCmd(podsOnly bool) tea.Cmd {
	prev := m.data
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return statusDataMsg(m.src.read(ctx, prev, podsOnly))
	}
}

func (m *statusModel) refresh(podsOnly bool) tea.Cmd {
	if m.reading {
		m.again = true
		return nil
	}
	m.reading = true
	return m.readCmd(podsOnly)
}

func (m *statusModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
		return m, nil
	case statusDataMsg:
		m.reading = false
		m.data = statusData(msg)
		m.loaded = true
		m.reads++
		m.fill()
		if m.again {
			m.again = false
			return m, m.refresh(false)
		}
		return m, nil
	case statusRefreshMsg:
		return m, m.refresh(false)
	case statusPodsMsg:
		return m, tea.Batch(m.refresh(true), m.podsTick())
	case statusLogMsg:
		if m.mode == modeLog {
			atBottom := m.view.AtBottom()
			m.view.SetContent(msg.text)
			if atBottom {
				m.view.GotoBottom()
			}
		}
		return m, nil
	case statusExecMsg:
		m.note = ""
		if msg.err != nil {
			m.note = "attach: " + msg.err.Error()
		}
		return m, m.refresh(false)
	case tea.KeyPressMsg:
		return m.key(msg)
	}
	return m, nil
}

func (m *statusModel) key(msg tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	k := msg.String()
	if k == "ctrl+c" {
		m.stopLog()
		return m, tea.Quit
	}
	if m.mode != modeTable {
		switch k {
		case "esc", "backspace", "left", "h":
			m.stopLog()
			m.mode = modeTable
			return m, nil
		case "q":
			m.stopLog()
			return m, tea.Quit
		}
		var cmd tea.Cmd
		m.view, cmd = m.view.Update(msg)
		return m, cmd
	}
	switch k {
	case "q":
		return m, tea.Quit
	case "tab", "right", "L":
		m.tab = (m.tab + 1) % len(statusTabs)
	case "shift+tab", "left", "H":
		m.tab = (m.tab + len(statusTabs) - 1) % len(statusTabs)
	case "1", "2", "3", "4", "5":
		m.tab = int(k[0] - '1')
	case "enter":
		if r, ok := m.selected(); ok {
			m.mode, m.viewName = modeDetail, statusTabs[m.tab]+" "+r.id
			m.view.SetContent(r.detail)
			m.view.GotoTop()
		}
	case "l":
		return m, m.openLog()
	case "a":
		return m, m.attach()
	default:
		var cmd tea.Cmd
		m.tables[m.tab], cmd = m.tables[m.tab].Update(msg)
		return m, cmd
	}
	m.note = ""
	return m, nil
}

func (m *statusModel) selected() (statusRow, bool) {
	rows := m.data.rows[m.tab]
	i := m.tables[m.tab].Cursor()
	if i < 0 || i >= len(rows) {
		return statusRow{}, false
	}
	return rows[i], true
}

// openLog streams the selected service's or execution's log into the view.
func (m *statusModel) openLog() tea.Cmd {
	r, ok := m.selected()
	if !ok || (m.tab != tabServices && m.tab != tabExecutions) {
		m.note = "l shows the log of a service or a task execution: select one on the Services or Executions view"
		return nil
	}
	m.stopLog()
	ctx, cancel := context.WithCancel(context.Background())
	m.logCancel = cancel
	m.mode, m.viewName = modeLog, "log of "+strings.ToLower(strings.TrimSuffix(statusTabs[m.tab], "s"))+" "+r.id
	m.log = &strings.Builder{}
	m.view.SetContent("(waiting for the log)")
	tab, id, src, send := m.tab, r.id, m.src, m.send
	w := &statusLogWriter{mu: m.logMu, b: m.log, send: send}
	go func() {
		var logURL string
		if tab == tabServices {
			res, err := src.env.autos.GetService(ctx, connect.NewRequest(&gitpodv1.GetServiceRequest{Id: id}))
			if err == nil {
				logURL = res.Msg.GetService().GetStatus().GetLogUrl()
			}
		} else {
			res, err := src.env.autos.GetTaskExecution(ctx, connect.NewRequest(&gitpodv1.GetTaskExecutionRequest{Id: id}))
			if err == nil {
				logURL = res.Msg.GetTaskExecution().GetStatus().GetLogUrl()
			}
		}
		if logURL == "" {
			io.WriteString(w, "(no log yet: it has not run)\n")
			return
		}
		g := *src.g
		g.stdout = w
		if err := g.streamLog(ctx, src.env.token, logURL, true); err != nil && ctx.Err() == nil {
			io.WriteString(w, "\n(log: "+oneLine(errorMessage(err))+")\n")
			return
		}
		if ctx.Err() == nil {
			io.WriteString(w, "\n(end of log)\n")
		}
	}()
	return nil
}

func (m *statusModel) stopLog() {
	if m.logCancel != nil {
		m.logCancel()
		m.logCancel = nil
	}
}

// statusLogWriter collects a log and shows it.
type statusLogWriter struct {
	mu   *sync.Mutex
	b    *strings.Builder
	send func(tea.Msg)
}

func (w *statusLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.b.Write(p)
	text := w.b.String()
	w.mu.Unlock()
	w.send(statusLogMsg{text: text})
	return len(p), nil
}

// attach hands the terminal to `runyard pods attach` for the selected pod.
// The child gets the server and key through its environment, never its
// arguments, which other users of the machine can read.
func (m *statusModel) attach() tea.Cmd {
	r, ok := m.selected()
	if !ok || m.tab != tabPods {
		m.note = "a attaches to a pod: select one on the Pods view"
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		m.note = "attach: " + err.Error()
		return nil
	}
	c := exec.Command(exe, "pods", "attach", r.id, "--org", m.src.org)
	c.Env = append(os.Environ(), "RUNYARD_SERVER="+m.g.server, "RUNYARD_TOKEN="+m.src.env.token)
	return tea.ExecProcess(c, func(err error) tea.Msg { return statusExecMsg{err: err} })
}

// fill puts the data into the tables, keeping each one's selection on the
// same resource when it moves.
func (m *statusModel) fill() {
	for i := range m.tables {
		t := &m.tables[i]
		var selID string
		if old := t.Rows(); t.Cursor() >= 0 && t.Cursor() < len(old) {
			selID = old[t.Cursor()][0]
		}
		rows := make([]table.Row, len(m.data.rows[i]))
		cursor := t.Cursor()
		for j, r := range m.data.rows[i] {
			rows[j] = table.Row(r.cells)
			if r.id == selID {
				cursor = j
			}
		}
		t.SetRows(rows)
		if cursor >= len(rows) {
			cursor = len(rows) - 1
		}
		if cursor < 0 {
			cursor = 0
		}
		t.SetCursor(cursor)
	}
}

func (m *statusModel) layout() {
	h := m.height - 6
	if h < 3 {
		h = 3
	}
	for i := range m.tables {
		m.tables[i].SetHeight(h)
		m.tables[i].SetWidth(m.width)
	}
	m.view.SetWidth(m.width)
	m.view.SetHeight(m.height - 4)
}

func (m *statusModel) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	return v
}

func (m *statusModel) render() string {
	var b strings.Builder
	feed := "live"
	if m.polling {
		feed = "polling every 2s"
	}
	b.WriteString(styleTitle.Render("runyard status") + "  " + m.g.server + "  " + styleDim.Render(feed) + "\n")
	var tabs []string
	for i, name := range statusTabs {
		label := fmt.Sprintf("%d %s (%d)", i+1, name, len(m.data.rows[i]))
		if i == m.tab {
			tabs = append(tabs, styleTabOn.Render(label))
		} else {
			tabs = append(tabs, styleTab.Render(label))
		}
	}
	b.WriteString(lipgloss.JoinHorizontal(lipgloss.Top, tabs...) + "\n")
	switch m.mode {
	case modeTable:
		if !m.loaded {
			b.WriteString("loading…\n")
		} else {
			b.WriteString(m.tables[m.tab].View() + "\n")
		}
	default:
		b.WriteString(styleTitle.Render(m.viewName) + "\n")
		b.WriteString(m.view.View() + "\n")
	}
	if m.data.err != nil {
		b.WriteString(styleErr.Render("error: "+oneLine(errorMessage(m.data.err))) + "\n")
	} else if m.note != "" {
		b.WriteString(styleErr.Render(m.note) + "\n")
	}
	help := "tab/←→ switch · ↑↓ select · enter detail · l logs · a attach · q quit"
	if m.mode != modeTable {
		help = "↑↓ scroll · esc back · q quit"
	}
	b.WriteString(styleDim.Render(help))
	return b.String()
}
