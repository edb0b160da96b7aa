package connectapi

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"

	"connectrpc.com/connect"

	"github.com/runyard/runyard/internal/api/apiauth"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/paging"
)

// authInterceptor puts the caller of each request into its context. Methods in
// public skip authentication (ExchangeToken: its request is the credential).
type authInterceptor struct {
	auth   apiauth.Authenticator
	public map[string]bool
	log    *slog.Logger
}

func (a *authInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		// Refused before its body was read (too many unauthenticated
		// requests from its address): not even a public method runs.
		if err := apiauth.Refused(ctx); err != nil {
			return nil, toConnect(ctx, a.log, req.Spec().Procedure, err)
		}
		if !a.public[req.Spec().Procedure] {
			var err error
			ctx, err = apiauth.Authenticate(ctx, a.auth, req.Header())
			if err != nil {
				return nil, toConnect(ctx, a.log, req.Spec().Procedure, err)
			}
			noteCaller(ctx)
		}
		return next(ctx, req)
	}
}

func (a *authInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (a *authInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := apiauth.Authenticate(ctx, a.auth, conn.RequestHeader())
		if err != nil {
			return toConnect(ctx, a.log, conn.Spec().Procedure, err)
		}
		return next(ctx, conn)
	}
}

// queryPage is the page request the SDKs' auto-pager puts in the query string
// (?token=&pageSize=) next to the request body.
type queryPage struct {
	token    string
	pageSize *int32
	err      error
}

type queryPageKey struct{}

// withQueryPaging captures ?token= and ?pageSize= for the list methods.
func withQueryPaging(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery == "" {
			next.ServeHTTP(w, r)
			return
		}
		q := r.URL.Query()
		var qp queryPage
		qp.token = q.Get("token")
		if v := q.Get("pageSize"); v != "" {
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil {
				qp.err = apperr.Invalid("pageSize", "must be an integer, got %q", v)
			} else {
				n32 := int32(n)
				qp.pageSize = &n32
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), queryPageKey{}, qp)))
	})
}

// pageOf merges the body's pagination with the query string's; the query wins
// because the auto-pager sets it for every page after the first while the
// body repeats the first request.
func pageOf(ctx context.Context, token string, size int32) (paging.Page, error) {
	if qp, ok := ctx.Value(queryPageKey{}).(queryPage); ok {
		if qp.err != nil {
			return paging.Page{}, qp.err
		}
		if qp.token != "" {
			token = qp.token
		}
		if qp.pageSize != nil {
			size = *qp.pageSize
		}
	}
	return paging.Parse(token, size)
}
