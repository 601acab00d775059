package main

import (
	"fmt"
	"os/exec"
	"syscall"
)

// raiseFDLimit raises the soft RLIMIT_NOFILE to the hard limit and reports
// whether need descriptors fit. Children (a spawned hub) inherit it.
func raiseFDLimit(need int) (soft uint64, err error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return 0, fmt.Errorf("raising RLIMIT_NOFILE to %d: %w", rl.Max, err)
		}
	}
	if uint64(need) > rl.Cur {
		return rl.Cur, fmt.Errorf("%d connections need about %d file descriptors, but the hard limit (ulimit -Hn) is %d: "+
			"raise it (as root: ulimit -Hn, or LimitNOFILE) or open fewer connections", need-64, need, rl.Cur)
	}
	return rl.Cur, nil
}

// setRcvBuf returns a net.Dialer Control function setting SO_RCVBUF
// before the connection is made (so the window is small from the start).
func setRcvBuf(n int) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		})
		if err != nil {
			return err
		}
		return serr
	}
}

// dieWithParent makes a spawned server die if this process dies, so a
// killed load run never leaves a server behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
