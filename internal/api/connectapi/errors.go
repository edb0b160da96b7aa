package connectapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/runyard/runyard/internal/apperr"
)

func errNotProto(msg any) error {
	return fmt.Errorf("%T is not a protobuf message", msg)
}

// toConnect maps a domain error to a Connect error through apperr's codes.
// Internal errors are logged here, once, and reach the client only as
// "internal error".
func toConnect(ctx context.Context, log *slog.Logger, procedure string, err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	if errors.Is(err, context.Canceled) {
		return connect.NewError(connect.CodeCanceled, errors.New("request canceled"))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("deadline exceeded"))
	}
	e := apperr.As(err)
	if e.Code == apperr.CodeInternal {
		log.ErrorContext(ctx, "request failed", "procedure", procedure, "err", err)
	}
	var code connect.Code
	if uerr := code.UnmarshalText([]byte(e.Code)); uerr != nil {
		code = connect.CodeInternal
	}
	return connect.NewError(code, errors.New(e.Public()))
}

// enumName returns the name of an enum value, refusing numbers the enum does
// not define (JSON and binary clients can send any number).
func enumName(field string, e protoreflect.Enum) (string, error) {
	v := e.Descriptor().Values().ByNumber(e.Number())
	if v == nil {
		return "", apperr.Invalid(field, "unknown %s value %d", e.Descriptor().Name(), e.Number())
	}
	return string(v.Name()), nil
}
