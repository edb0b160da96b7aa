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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal starts a graceful shutdown, restore the
		// default handling so that a second one ends the process at once.
		<-ctx.Done()
		stop()
	}()
	code := cli.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
