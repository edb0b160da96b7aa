package proc

import (
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// WaitExited blocks until the child pid has exited, without reaping it: the
// zombie keeps the pid, its group and session id, from being recycled
// while the rest of the session is killed.
//
// It waits on a pidfd through the runtime's poller, so that a runner with
// hundreds of running commands does not hold an OS thread blocked in
// waitid for each; where pidfds are missing (Linux before 5.4) it blocks
// in waitid.
func WaitExited(pid int) error {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return waitExitedBlocking(pid)
	}
	// os.NewFile puts a non-blocking descriptor in the poller; the file
	// owns fd from here on.
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return waitExitedBlocking(pid)
	}
	var werr error
	err = rc.Read(func(fd uintptr) bool {
		exited, err := pidfdExited(int(fd))
		if err != nil {
			werr = err
			return true
		}
		return exited
	})
	if err != nil || werr != nil {
		// The poller would not take the pidfd, or the kernel has
		// pidfd_open without waitid(P_PIDFD): wait the old way rather
		// than report an exit that did not happen (callers then kill and
		// reap the session).
		return waitExitedBlocking(pid)
	}
	return nil
}

// pidfdExited reports whether the child behind pidfd fd has exited,
// without waiting and without reaping it.
func pidfdExited(fd int) (bool, error) {
	const pPIDFD = 3
	var info [128]byte // siginfo_t; si_pid is at byte 16 on 64-bit Linux
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_WAITID, pPIDFD, uintptr(fd),
			uintptr(unsafe.Pointer(&info[0])), syscall.WEXITED|syscall.WNOWAIT|syscall.WNOHANG, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return false, e
		}
		// With WNOHANG, a child that has not exited leaves si_pid zero.
		return *(*int32)(unsafe.Pointer(&info[16])) != 0, nil
	}
}

// waitExitedBlocking is WaitExited with a thread blocked in waitid.
func waitExitedBlocking(pid int) error {
	const pPID = 1
	var info [128]byte // siginfo_t
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info[0])), syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}
