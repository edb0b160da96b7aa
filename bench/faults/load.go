package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// acked is every write the control plane acknowledged (answered 2xx), by
// what it made or changed.
type acked struct {
	mu             sync.Mutex
	services       []string // CreateService
	startedSvcs    []string // StartService
	tasks          []string // CreateTask
	executions     []string // StartTask
	pods           []string // POST /pods
	writes, failed int      // acknowledged writes; writes with no 2xx answer
	firstErrs      []string
}

func (a *acked) add(list *[]string, id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	*list = append(*list, id)
	a.writes++
}

func (a *acked) fail(what string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failed++
	if len(a.firstErrs) < 5 {
		a.firstErrs = append(a.firstErrs, what+": "+err.Error())
	}
}

// The commands of the load: each appends its own id to the starts file
// first. A service appends its pid too ($$ is the shell's, which exec
// hands to sleep), so that its process can be found at the end.
const (
	serviceCmd = `echo "$RUNYARD_SERVICE_ID $$" >> %[1]s; exec sleep 100000`
	taskCmd    = `echo "$RUNYARD_TASK_EXECUTION_ID" >> %[1]s; sleep 1`
	agentID    = "faults-agent"
)

// setupLoad creates the agent type the pods run.
func (c *cluster) setupLoad() error {
	agent := map[string]any{"id": agentID, "name": "Faults", "command": []string{"sh", "-c", `echo "$RUNYARD_POD_KEY" >> ` + c.starts + `; sleep 3`}}
	return c.rest(http.MethodPost, "/agents", agent, nil)
}

// createEnv creates an empty environment on r and waits until it runs.
func (c *cluster) createEnv(ctx context.Context, r *runner) error {
	var out struct {
		Environment struct {
			ID string `json:"id"`
		} `json:"environment"`
	}
	if err := c.cli(&out, "environments", "create", "--runner", r.id, "--name", "faults-"+r.name); err != nil {
		return err
	}
	r.envID = out.Environment.ID
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var e struct {
			Environment struct {
				Status struct {
					Phase string `json:"phase"`
				} `json:"status"`
			} `json:"environment"`
		}
		if err := c.connect("EnvironmentService/GetEnvironment", map[string]string{"environmentId": r.envID}, &e); err == nil &&
			e.Environment.Status.Phase == "ENVIRONMENT_PHASE_RUNNING" {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("environment %s on %s did not run", r.envID, r.name)
}

// load runs one operation every cfg.loadEvery until ctx ends: in turn a
// service (created and started, while fewer than cfg.services were), a
// task (created and started once) and a pod, on the runners' environments
// in turn. A write that fails is not retried: only what was acknowledged
// counts.
func (c *cluster) load(ctx context.Context, a *acked) {
	t := time.NewTicker(c.cfg.loadEvery)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r := c.runners[i%len(c.runners)]
		op := i % 3
		a.mu.Lock()
		if op == 0 && len(a.services) >= c.cfg.services {
			op = 1
		}
		a.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch op {
			case 0:
				c.loadService(r, i, a)
			case 1:
				c.loadTask(r, i, a)
			default:
				c.loadPod(a)
			}
		}()
	}
}

func (c *cluster) loadService(r *runner, i int, a *acked) {
	var created struct {
		Service struct {
			ID string `json:"id"`
		} `json:"service"`
	}
	ref := fmt.Sprintf("svc-%d", i)
	err := c.connect("EnvironmentAutomationService/CreateService", map[string]any{
		"environmentId": r.envID,
		"metadata":      map[string]any{"reference": ref, "name": ref},
		"spec":          map[string]any{"commands": map[string]any{"start": fmt.Sprintf(serviceCmd, c.starts)}},
	}, &created)
	if err != nil {
		a.fail("CreateService", err)
		return
	}
	a.add(&a.services, created.Service.ID)
	if err := c.connect("EnvironmentAutomationService/StartService", map[string]string{"id": created.Service.ID}, nil); err != nil {
		a.fail("StartService", err)
		return
	}
	a.add(&a.startedSvcs, created.Service.ID)
}

func (c *cluster) loadTask(r *runner, i int, a *acked) {
	var created struct {
		Task struct {
			ID string `json:"id"`
		} `json:"task"`
	}
	ref := fmt.Sprintf("task-%d", i)
	err := c.connect("EnvironmentAutomationService/CreateTask", map[string]any{
		"environmentId": r.envID,
		"metadata":      map[string]any{"reference": ref, "name": ref},
		"spec":          map[string]any{"command": fmt.Sprintf(taskCmd, c.starts)},
	}, &created)
	if err != nil {
		a.fail("CreateTask", err)
		return
	}
	a.add(&a.tasks, created.Task.ID)
	var started struct {
		TaskExecution struct {
			ID string `json:"id"`
		} `json:"taskExecution"`
	}
	if err := c.connect("EnvironmentAutomationService/StartTask", map[string]string{"id": created.Task.ID}, &started); err != nil {
		a.fail("StartTask", err)
		return
	}
	a.add(&a.executions, started.TaskExecution.ID)
}

func (c *cluster) loadPod(a *acked) {
	var created struct {
		Pod struct {
			Key string `json:"key"`
		} `json:"pod"`
	}
	if err := c.rest(http.MethodPost, "/pods", map[string]string{"agent_type_id": agentID, "initial_prompt": "faults"}, &created); err != nil {
		a.fail("CreatePod", err)
		return
	}
	a.add(&a.pods, created.Pod.Key)
}
