package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ssekit/ssekit/adapters/adaptertest"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/internal/leaktest"
)

func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}

func TestPublishAndStream(t *testing.T) {
	b, err := core.New(core.Config{Authenticator: core.InsecureQueryAuthenticator(), RetryHint: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, newApp(b), b) }()
	base := "http://" + ln.Addr().String()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}

	user := uuid.New()
	s := adaptertest.Dial(t, hc, base+"/events?topic=news&user="+user.String(), nil)
	if s.Resp.Uncompressed {
		t.Error("the stream was compressed: it should be written beneath Gzip")
	}
	s.Opened(t)
	publish := func(body string, want int) string {
		t.Helper()
		resp, err := hc.Post(base+"/publish", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct{ ID, Error string }
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want || json.Unmarshal(raw, &out) != nil {
			t.Fatalf("POST /publish %s: %d %s, want %d", body, resp.StatusCode, raw, want)
		}
		return out.ID
	}
	id1 := publish(`{"topic":"news","event":"headline","data":"hello"}`, http.StatusOK)
	id2 := publish(`{"user":"`+user.String()+`","event":"note","data":"for you"}`, http.StatusOK)
	publish(`{"topic":"news"}`, http.StatusBadRequest) // no event type
	for _, want := range []core.Event{{ID: id1, Type: "headline", Data: "hello"}, {ID: id2, Type: "note", Data: "for you"}} {
		if ev := s.Event(t); ev != want {
			t.Errorf("got %+v, want %+v", ev, want)
		}
	}

	stop() // as on SIGINT: the stream ends with a reconnect hint
	s.Comment(t, string(core.ReasonShutdown))
	if _, retry, err := s.End(t); err != io.EOF || retry < time.Second {
		t.Errorf("stream ended with %v, retry %v; want io.EOF and the shutdown's retry hint", err, retry)
	}
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}
