package heketi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"
)

// Error is a failed heketi call.
type Error struct {
	// Op is the call, e.g. "volume_create".
	Op string
	// Status is the HTTP status heketi answered with, 0 if none.
	Status int
	// Message is heketi's own message (its plain-text error body).
	Message string
	Err     error
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	if e.Status != 0 {
		return fmt.Sprintf("heketi %s: %s (HTTP %d)", e.Op, msg, e.Status)
	}
	return fmt.Sprintf("heketi %s: %s", e.Op, msg)
}

func (e *Error) Unwrap() error { return e.Err }

func asError(err error) *Error {
	var he *Error
	if errors.As(err, &he) {
		return he
	}
	return nil
}

// IsNotFound reports whether heketi said the object does not exist.
func IsNotFound(err error) bool {
	he := asError(err)
	if he == nil {
		return false
	}
	return he.Status == http.StatusNotFound || strings.Contains(he.Message, "Id not found")
}

// IsAdminRequired reports whether the call needs heketi's admin user: the
// "user" key may only create volumes, so polling, info and delete fail.
func IsAdminRequired(err error) bool {
	he := asError(err)
	return he != nil && strings.Contains(he.Message, "Administrator access required")
}

// IsUnauthorized reports a rejected JWT (wrong user or key).
func IsUnauthorized(err error) bool {
	he := asError(err)
	return he != nil && he.Status == http.StatusUnauthorized && !IsAdminRequired(err)
}

// IsTransient reports failures worth retrying later: heketi busy (429),
// a proxy error (502–504), heketi unreachable, or the call timed out.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	if IsTimeout(err) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	he := asError(err)
	return he != nil && retryableStatus(he.Status)
}

// IsTimeout reports whether the call ran out of time: the operation may
// still complete on the server.
func IsTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded)
}
