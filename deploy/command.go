package deploy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"syscall"
	"time"
)

// runCommand runs an operator's command line (deploy.start, deploy.stop, placeholders
// filled in) through /bin/sh, bounded by timeout. Each line it prints goes to log and to
// output; the error says how it ended.
func runCommand(ctx context.Context, line string, timeout time.Duration, log *slog.Logger, output func(string)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", line)
	// Its own process group, so a timeout ends the command's children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			log.Info("command output", "command", line, "line", sc.Text())
			output(sc.Text())
		}
	}()
	err := cmd.Run()
	w.Close()
	<-done
	switch {
	case err == nil:
		return nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%q did not finish within %s (deploy.start_timeout)", line, timeout)
	case ctx.Err() != nil:
		return fmt.Errorf("%q interrupted: %w", line, ctx.Err())
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("%q exited with status %d", line, exit.ExitCode())
	}
	return fmt.Errorf("%q: %w", line, err)
}
