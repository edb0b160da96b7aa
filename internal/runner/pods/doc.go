// Package pods is the runner's pod manager: it runs AI-agent sessions (pods)
// in pseudo-terminals on the runner host and converges on the set of pods the
// control plane wants there.
//
// The life of one pod, owned by one goroutine (pod.run) while this runner
// process holds it. The pod's processes run under a process holder
// (internal/runner/holder) that owns the PTY, the scrollback and the exit
// status, so the pod outlives the runner process:
//
//	              Ensure: key not seen before
//	                          │
//	                          ▼
//	                      starting ──────── holder or exec fails ─────────────┐
//	                          │ holder started: the agent leads a new session │
//	                          │ on a PTY; pods/<key>/holder records it        │
//	                          ▼                                               │
//	      ┌──────────────▶ running ────────────── leader exits ───────┐       │
//	      │                   │ Terminate, gone from Ensure, StopAll  │       │
//	      │                   ▼                                       │       │
//	      │               stopping   SIGHUP, then SIGTERM, to the     │       │
//	      │                   │      group and session                │       │
//	      │                   │ StopGrace passes (or StopAll's ctx)   │       │
//	      │                   ▼                                       │       │
//	      │                killing   SIGKILL to the group and session │       │
//	      │                   │ leader exits                          │       │
//	      │                   ▼                                       ▼       │
//	      │                exited    the holder kills what is left of the     │
//	      │                   │      session, reaps it, saves the output,     │
//	      │                   │      records the exit and ends                │
//	      │                   ▼                                               │
//	      │                 done  ◀───────────────────────────────────────────┘
//	      │  terminated | failed; exit record written, holder directory removed
//	      │
//	      │  Close: the goroutine lets go; the pod runs on under its holder
//	      └── Open of the next runner process: adopted (same processes, the
//	          holder's scrollback); a holder that died meanwhile took the agent
//	          with it ─▶ done: failed "the process holder died"
//
//	Open: a pid file without an exit record and without a holder (a runner
//	      version that ran pods itself died under them) ─▶ kill the leftover
//	      session ─▶ done: failed "runner restarted"
//
// The status a pod reports (Event) is running while it runs, then exactly
// one of:
//
//   - terminated: the agent exited 0, or it was stopped on request
//     (Terminate, or it left the desired set);
//   - failed: the agent exited non-zero ("exit code 3"), was killed by a
//     signal nobody here sent ("killed by SIGKILL"; ExitCode is 128+signal as
//     a shell reports it), could not be started, was stopped with a reason
//     (StopAll: the runner was deleted), or its holder died under it.
//
// # Processes
//
// Each pod's argv runs without a shell as the leader of its own session and
// process group, with the PTY as its controlling terminal, as the child of
// its holder (a child subreaper, so the agent's orphans are its too).
// Signals go to the group and to every process still in the session (a
// shell with job control moves background jobs to groups of their own), so
// nothing the agent started outlives the pod, and processes that ignore
// SIGHUP and SIGTERM die by SIGKILL after StopGrace. The holder waits for
// the leader without reaping it (waitid WNOWAIT), kills what is left of the
// session, and only then reaps it: until then the leader's pid, which is
// also the group and session id, cannot be recycled, so no signal reaches a
// stranger. Processes that left the session themselves (setsid, a
// daemonizing double fork) are outside of what a pod owns.
//
// Each pod's state lives in StateDir/pods/<key>/: "holder/" (the holder's
// record, socket, saved output and exit) while the pod may run, "exit.json"
// (its final Event) once it ended, "output" (its scrollback when it ended)
// and "work/", the default working directory. The exit record is also the
// tombstone that keeps a pod from being started twice: a key that has one is
// never started again, not even by a later runner process.
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
// The daemon opens one Manager on its state directory at start (which adopts
// what a predecessor left running), forwards Events to the control plane and
// sends the Pods snapshot on every connect, calls Ensure with the full set of
// pods assigned to it on every snapshot or change (it is level-triggered and
// idempotent), relays terminal sessions with Attach, Attachment.Write and
// Resize, and calls Close(ctx) on shutdown, which leaves the pods running
// for the next runner process. A runner that is deleted or refused ends its
// pods first (Ensure with nothing, or StopAll).
package pods
