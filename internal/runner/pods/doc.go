// Package pods is the runner's pod manager: it runs AI-agent sessions (pods)
// in pseudo-terminals on the runner host and converges on the set of pods the
// control plane wants there.
//
// The life of one pod, owned by one goroutine (pod.run) from start to end:
//
//	              Ensure: key not seen before
//	                          │
//	                          ▼
//	                      starting ──────── exec fails ───────────────────────┐
//	                          │ process started in a new session on a PTY,    │
//	                          │ pid file written                              │
//	                          ▼                                               │
//	                       running ────────────── leader exits ───────┐       │
//	                          │ Terminate, gone from Ensure, Close    │       │
//	                          ▼                                       │       │
//	                      stopping   SIGTERM to the group and session │       │
//	                          │ StopGrace passes (or Close's ctx ends)│       │
//	                          ▼                                       │       │
//	                       killing   SIGKILL to the group and session │       │
//	                          │ leader exits                          │       │
//	                          ▼                                       ▼       │
//	                       exited    SIGKILL what is left of the session,     │
//	                          │      reap the leader (and orphans handed to   │
//	                          │      this process), drain the PTY             │
//	                          ▼                                               │
//	                        done  ◀───────────────────────────────────────────┘
//	        terminated | failed; exit record written, pid file removed
//
//	Open: a pid file without an exit record (the runner died under its pods)
//	      ─▶ kill the leftover session ─▶ done: failed "runner restarted"
//
// The status a pod reports (Event) is running while it runs, then exactly
// one of:
//
//   - terminated: the agent exited 0, or it was stopped on request
//     (Terminate, or it left the desired set);
//   - failed: the agent exited non-zero ("exit code 3"), was killed by a
//     signal nobody here sent ("killed by SIGKILL"; ExitCode is 128+signal as
//     a shell reports it), could not be started, the runner stopped under it
//     (Close: "runner stopped") or died under it (Open: "runner restarted").
//
// # Processes
//
// Each pod's argv runs without a shell as the leader of its own session and
// process group, with the PTY as its controlling terminal. Signals go to the
// group and to every process still in the session (a shell with job control
// moves background jobs to groups of their own), so nothing the agent
// started outlives the pod, and processes that ignore SIGTERM die by SIGKILL
// after StopGrace. The pod goroutine waits for the leader without reaping it
// (waitid WNOWAIT), kills what is left of the session, and only then reaps
// it: until then the leader's pid, which is also the group and session id,
// cannot be recycled, so no signal reaches a stranger. When this process is
// PID 1 or a child subreaper, killed session members are handed to it and it
// reaps them too. Processes that left the session themselves (setsid, a
// daemonizing double fork) are outside of what a pod owns.
//
// Each pod's state lives in StateDir/pods/<key>/: "pid" (session id, start
// time in clock ticks since boot and the boot id, so a recycled pid is never
// mistaken for a leftover) while the pod runs, "exit.json" (its final Event)
// once it ended, and "work/", the default working directory. The exit record
// is also the tombstone that keeps a pod from being started twice: a key that
// has one is never started again, not even by a later runner process.
//
// # Output
//
// Every pod keeps its last ScrollbackBytes of output in a ring buffer;
// Scrollback and Attach return it with TruncationMarker in front once older
// output was dropped. Attachers receive live output on a channel. An attacher
// that falls more than 256 chunks behind is disconnected (its
// channel is closed and Err reports ErrSlowAttacher) instead of holding the
// pod up; dropping chunks in the middle of the stream instead would corrupt
// escape sequences on its terminal, while a re-attach starts cleanly from the
// scrollback.
//
// # Use by the daemon
//
// The daemon opens one Manager on its state directory at start (which sweeps
// what a crashed predecessor left), forwards Events to the control plane and
// sends the Pods snapshot on every connect, calls Ensure with the full set of
// pods assigned to it on every snapshot or change (it is level-triggered and
// idempotent), relays terminal sessions with Attach, Attachment.Write and
// Resize, and calls Close(ctx) on shutdown. Pods do not outlive their runner
// process: a PTY cannot be handed to the next one.
package pods
