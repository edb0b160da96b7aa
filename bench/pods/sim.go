package main

// This file is the runner simulator: a child process that holds the streams
// of its share of the runners over the real runner protocol
// (RunnerControlService/Connect), one TCP connection per runner, and reports
// what the control plane sent them.

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/runyard/runyard/bench/internal/simstream"
	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
)

// profile is one simulated runner: its exchange token and what it advertises
// in its status snapshot.
type profile struct {
	Token      string   `json:"token"`
	MaxPods    int      `json:"maxPods"`
	Labels     []string `json:"labels"`
	AgentTypes []string `json:"agentTypes"`
	Draining   bool     `json:"draining,omitempty"`
}

// simReport is what a simulator prints, one JSON line every 250 ms and one
// when it ends.
type simReport struct {
	Connected int64 `json:"connected"`
	Renewals  int64 `json:"renewals"`
	// Desired counts desired-state messages; Pods the distinct pod keys they
	// carried; OverMax the messages that carried more pods than the runner's
	// max_pods; Running the running reports sent.
	Desired   int64  `json:"desired"`
	Pods      int64  `json:"pods"`
	OverMax   int64  `json:"overMax"`
	Running   int64  `json:"running"`
	Errors    int64  `json:"errors"`
	LastError string `json:"lastError,omitempty"`
}

type simState struct {
	connected, renewals, desired, pods, overMax, running, errors atomic.Int64
	mu                                                           sync.Mutex
	last                                                         string
}

func (s *simState) fail(err error) {
	s.errors.Add(1)
	s.mu.Lock()
	s.last = err.Error()
	s.mu.Unlock()
}

func (s *simState) report() simReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return simReport{Connected: s.connected.Load(), Renewals: s.renewals.Load(), Desired: s.desired.Load(),
		Pods: s.pods.Load(), OverMax: s.overMax.Load(), Running: s.running.Load(), Errors: s.errors.Load(), LastError: s.last}
}

// simulate holds one stream per profile read from a file (one JSON object a
// line) until its stdin closes.
func simulate(args []string) error {
	fs := flag.NewFlagSet("simulate", flag.ExitOnError)
	server := fs.String("server", "", "control plane URL")
	file := fs.String("profiles", "", "file with one runner profile (JSON) per line")
	srcIP := fs.String("src", "127.0.0.1", "loopback source address, so that many runners do not run out of ports")
	reportRunning := fs.Bool("report-running", false, "report every new pod as running, as a real runner does once it started it")
	connectStreams := fs.Bool("connect-streams", false, "hold each stream on the Connect procedure (HTTP/2), not on a connection of its own")
	fs.Parse(args)
	f, err := os.Open(*file)
	if err != nil {
		return fmt.Errorf("open profiles: %w", err)
	}
	var list []profile
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var p profile
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			f.Close()
			return fmt.Errorf("decode profile: %w", err)
		}
		list = append(list, p)
	}
	f.Close()
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read profiles: %w", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()

	var st simState
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(*srcIP)}, Timeout: 30 * time.Second}
	identity := gitpodv1connect.NewIdentityServiceClient(&http.Client{
		Transport: &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 32}}, *server)
	sem := make(chan struct{}, 32) // bounds the connect storm at the start
	var wg sync.WaitGroup
	for _, p := range list {
		wg.Go(func() { runSim(ctx, &st, identity, dialer, *server, p, *reportRunning, *connectStreams, sem) })
	}
	enc := json.NewEncoder(os.Stdout)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := enc.Encode(st.report()); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		select {
		case <-ctx.Done():
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
			}
			return enc.Encode(st.report())
		case <-tick.C:
		}
	}
}

// runSim is one runner: exchange its token, connect, send its status, then
// renew at the interval the control plane gives and read desired states.
func runSim(ctx context.Context, st *simState, identity gitpodv1connect.IdentityServiceClient, dialer *net.Dialer,
	server string, p profile, reportRunning, connectStreams bool, sem chan struct{}) {
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	res, err := identity.ExchangeToken(ctx, connect.NewRequest(&gitpodv1.ExchangeTokenRequest{ExchangeToken: p.Token}))
	if err != nil {
		<-sem
		st.fail(fmt.Errorf("exchange token: %w", err))
		return
	}
	stream, err := simstream.Open(ctx, dialer, server, res.Msg.GetAccessToken(), connectStreams)
	if err != nil {
		<-sem
		st.fail(fmt.Errorf("connect: %w", err))
		return
	}
	var sendMu sync.Mutex
	send := func(m *runnerv1.ConnectRequest) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(m)
	}
	err = send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_Status{Status: &runnerv1.Status{
		Version: "bench", Os: "linux", Arch: "amd64", Hostname: "sim", MaxPods: int32(p.MaxPods),
		Labels: p.Labels, AgentTypes: p.AgentTypes, Draining: p.Draining,
		Components: []*runnerv1.Component{{Name: "runner", Health: runnerv1.Health_HEALTH_HEALTHY}},
	}}})
	var interval time.Duration
	if err == nil {
		var m *runnerv1.ConnectResponse
		if m, err = stream.Receive(); err == nil {
			interval = m.GetWelcome().GetRenewInterval().AsDuration()
		}
	}
	<-sem
	if err != nil || interval <= 0 {
		st.fail(fmt.Errorf("connect: %v (renew interval %s)", err, interval))
		return
	}
	st.connected.Add(1)
	defer st.connected.Add(-1)
	go func() {
		seen := map[string]bool{}
		for {
			m, err := stream.Receive()
			if err != nil {
				if ctx.Err() == nil {
					st.fail(fmt.Errorf("receive: %w", err))
				}
				return
			}
			d := m.GetDesired()
			if d == nil {
				continue
			}
			st.desired.Add(1)
			if len(d.GetPods()) > p.MaxPods {
				st.overMax.Add(1)
			}
			for _, pod := range d.GetPods() {
				if seen[pod.GetKey()] {
					continue
				}
				seen[pod.GetKey()] = true
				st.pods.Add(1)
				if !reportRunning {
					continue
				}
				if err := send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_PodStatus{PodStatus: &runnerv1.PodStatus{
					Key: pod.GetKey(), State: runnerv1.PodState_POD_STATE_RUNNING, StartedAt: timestamppb.Now()}}}); err != nil {
					if ctx.Err() == nil {
						st.fail(fmt.Errorf("report pod: %w", err))
					}
					return
				}
				st.running.Add(1)
			}
		}
	}()
	// Renewals spread over the interval, as runners started at different
	// times send them.
	select {
	case <-time.After(rand.N(interval)):
	case <-ctx.Done():
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_Renewal{
			Renewal: &runnerv1.Renewal{SentAt: timestamppb.Now()}}}); err != nil {
			if ctx.Err() == nil {
				st.fail(fmt.Errorf("renew: %w", err))
			}
			return
		}
		st.renewals.Add(1)
		select {
		case <-t.C:
		case <-ctx.Done():
			sendMu.Lock()
			stream.CloseRequest()
			sendMu.Unlock()
			return
		}
	}
}
