// Command runyard is the one binary of runyard: control plane, runner and CLI.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/runyard/runyard/internal/cli"
)

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal starts a graceful shutdown, and tells the CLI
		// which signal it was (its exit code is 128 plus its number).
		// Stopping the relay restores the default handling, so that a
		// second one ends the process at once.
		sig := <-sigs
		signal.Stop(sigs)
		cancel(cli.Interrupted{Signal: sig.(syscall.Signal)})
	}()
	code := cli.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	signal.Stop(sigs)
	os.Exit(code)
}
