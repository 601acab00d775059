package adaptertest

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core"
)

// ErrorLogStart starts the adapter under test around b with its error log
// option (WithErrorLog) set to log, serving b's streams at "/events" on a
// server that t's cleanup stops, and returns the server's base URL
// ("http://127.0.0.1:port").
type ErrorLogStart func(t *testing.T, b *core.Broker, log func(error)) (baseURL string)

// CheckErrorLog checks that the error Serve returns reaches the adapter's
// error log: the one place an operator learns why a stream was cut, since
// the client never sees it. It opens a stream whose credentials have
// already expired, which Serve ends at once with core.ErrTokenExpired
// after the preamble; the stream must end cleanly and the error log must
// receive that error.
func CheckErrorLog(t *testing.T, start ErrorLogStart) {
	t.Helper()
	auth := core.AuthenticatorFunc(func(context.Context, core.Request) (core.Identity, error) {
		return core.Identity{ExpiresAt: time.Unix(1, 0)}, nil
	})
	b := NewBroker(t, core.Config{Authenticator: auth})
	logged := make(chan error, 16)
	base := start(t, b, func(err error) {
		select {
		case logged <- err:
		default: // a flood of errors is a failure of its own, seen below
		}
	})
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := Dial(t, &http.Client{Transport: tr}, base+"/events", nil)
	c.Opened(t)
	c.Comment(t, string(core.ReasonTokenExpired))
	select {
	case err := <-logged:
		if !errors.Is(err, core.ErrTokenExpired) {
			t.Errorf("error log got %v, want core.ErrTokenExpired", err)
		}
	case <-time.After(WaitTimeout):
		t.Fatalf("the error log got nothing within %v after Serve ended the stream with core.ErrTokenExpired", WaitTimeout)
	}
}
