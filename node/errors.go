package node

import (
	"errors"
	"fmt"
)

// Kinds of request errors. Domain code says what is wrong; the HTTP layer
// alone maps a kind to a status code (httpStatus).
var (
	// ErrInvalidRequest: the request is malformed or asks for what the
	// network does not allow.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrTooLarge: the request, or the job it makes, is over a limit.
	ErrTooLarge = errors.New("request too large")
	// ErrUnprocessable: the output holds nothing this node can verify.
	ErrUnprocessable = errors.New("nothing to verify")
	// ErrUnavailable: the node cannot take the request now (overloaded or
	// stopping); another node or a later try may.
	ErrUnavailable = errors.New("node unavailable")
	// ErrDisabled: the node does not offer what was asked.
	ErrDisabled = errors.New("not offered by this node")
	// ErrUpstream: a service the node relies on (a model) failed.
	ErrUpstream = errors.New("upstream service failed")
)

// RequestError is a refused request: its kind (one of the Err* kinds
// above), a stable code and a message for a person.
type RequestError struct {
	Kind    error
	Code    string
	Message string
}

func (e *RequestError) Error() string { return e.Message }

// Unwrap makes errors.Is(err, kind) true.
func (e *RequestError) Unwrap() error { return e.Kind }

func requestError(kind error, code, format string, args ...any) *RequestError {
	return &RequestError{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}
