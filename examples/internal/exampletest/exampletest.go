// Package exampletest is what the examples' tests share: a real client
// stream (package client over HTTP on loopback) whose events a test reads
// with a deadline, a JSON POST helper, and headless Chromium for the
// browser tests (chromium.go).
package exampletest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/client"
	"github.com/ssekit/ssekit/core"
)

// Stream is one real client connection (package client, over HTTP on
// loopback) whose events are collected for the test to read.
type Stream struct {
	t        *testing.T
	events   chan core.Event
	mu       sync.Mutex
	comments []string
	err      error
	cancel   context.CancelFunc
	done     chan struct{}
}

// Subscribe opens a stream to url and returns once the server has answered
// 200, which is when the broker has registered the connection.
func Subscribe(t *testing.T, url string, opts ...client.Option) *Stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Stream{t: t, events: make(chan core.Event, 1024), cancel: cancel, done: make(chan struct{})}
	open := make(chan struct{})
	var once sync.Once
	opts = append([]client.Option{
		client.WithOnState(func(st client.State) {
			if st == client.Open {
				once.Do(func() { close(open) })
			}
		}),
		client.WithOnComment(func(text string) {
			s.mu.Lock()
			s.comments = append(s.comments, text)
			s.mu.Unlock()
		}),
	}, opts...)
	c, err := client.New(url, opts...)
	if err != nil {
		cancel()
		require.NoError(t, err)
	}
	go func() {
		defer close(s.done)
		for ev, err := range c.Events(ctx) {
			if err != nil {
				s.mu.Lock()
				s.err = err
				s.mu.Unlock()
				return
			}
			select {
			case s.events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(s.Close)
	select {
	case <-open:
	case <-s.done:
		require.FailNowf(t, "stream ended before it opened", "%s: %v", url, s.Err())
	case <-time.After(10 * time.Second):
		require.FailNowf(t, "stream did not open", "%s within 10s", url)
	}
	return s
}

// Close ends the stream and waits for its reader.
func (s *Stream) Close() {
	s.cancel()
	<-s.done
}

// Comments returns the comment lines received so far (heartbeats, the
// opening frame, closing reasons).
func (s *Stream) Comments() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.comments...)
}

// Err returns the error that ended the stream, if any.
func (s *Stream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Next returns the next event that is not of one of the skip types.
func (s *Stream) Next(skip ...string) core.Event {
	s.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-s.events:
			if !contains(skip, ev.Type) {
				return ev
			}
		case <-timeout:
			require.FailNowf(s.t, "no event within 10s", "stream error: %v", s.Err())
			return core.Event{}
		}
	}
}

// Expect reads the next event and checks its type and, when data is not
// nil, its JSON data.
func (s *Stream) Expect(typ string, data any) core.Event {
	s.t.Helper()
	ev := s.Next()
	require.Equal(s.t, typ, ev.Type, "event type (data %s)", ev.Data)
	if data != nil {
		want, err := json.Marshal(data)
		require.NoError(s.t, err)
		require.True(s.t, JSONEqual(ev.Data, string(want)), "event %q: got data %s, want %s", typ, ev.Data, want)
	}
	return ev
}

// ExpectNone checks that no event arrives for d.
func (s *Stream) ExpectNone(d time.Duration) {
	s.t.Helper()
	select {
	case ev := <-s.events:
		require.FailNowf(s.t, "unexpected event", "%q %s", ev.Type, ev.Data)
	case <-time.After(d):
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// JSONEqual reports whether a and b hold the same JSON value (or, when
// either is not JSON, the same text).
func JSONEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return a == b
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// Post sends body as JSON and returns the status and response body.
func Post(t *testing.T, hc *http.Client, url string, body any, header ...string) (int, string) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}
