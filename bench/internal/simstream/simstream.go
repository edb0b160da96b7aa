// Package simstream opens a simulated runner's stream for the benchmarks,
// on either way a runner daemon opens it: a connection of its own
// (runnerstream, what runners use) or the Connect procedure over h2c (what
// a runner behind a proxy uses).
package simstream

import (
	"context"
	"net"
	"net/http"
	"strings"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/gen/runyard/runner/v1/runnerv1connect"
	"github.com/runyard/runyard/internal/rawconn"
	"github.com/runyard/runyard/internal/runnerstream"
)

// Stream is one simulated runner's stream.
type Stream interface {
	Send(*runnerv1.ConnectRequest) error
	Receive() (*runnerv1.ConnectResponse, error)
	CloseRequest() error
}

// Open opens the stream of the runner whose access token is token, on a
// TCP connection of its own through dialer (each runner has one, as
// runners on separate hosts do), with onConnect on the Connect procedure.
// The stream ends with ctx.
func Open(ctx context.Context, dialer *net.Dialer, server, token string, onConnect bool) (Stream, error) {
	if onConnect {
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		tr := &http.Transport{Protocols: p, DialContext: dialer.DialContext}
		context.AfterFunc(ctx, tr.CloseIdleConnections)
		client := runnerv1connect.NewRunnerControlServiceClient(&http.Client{Transport: tr}, server)
		cs := client.Connect(ctx)
		cs.RequestHeader().Set("Authorization", "Bearer "+token)
		return cs, nil
	}
	hdr := http.Header{}
	hdr.Set("Authorization", "Bearer "+token)
	conn, err := rawconn.DialWith(ctx, dialer, strings.TrimRight(server, "/")+runnerstream.Path, hdr, runnerstream.Protocol, nil)
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, func() { conn.Close() })
	return runnerstream.NewClient(conn), nil
}
