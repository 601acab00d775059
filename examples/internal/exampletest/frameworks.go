package exampletest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/adapters/adaptertest"
	"github.com/ssekit/ssekit/core"
)

// PublishAndStream drives a framework example (examples/gin, echo, fiber)
// served at base: a stream receives a topic push and a user push sent
// through POST /publish, a publish without an event type gets 400, and
// stop (what the example does on SIGINT) ends the stream with the
// shutdown's reconnect hint of at least a second; done reports the
// example's serve result.
func PublishAndStream(t *testing.T, base string, stop func(), done <-chan error) {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}

	user := uuid.New()
	s := adaptertest.Dial(t, hc, base+"/events?topic=news&user="+user.String(), nil)
	assert.False(t, s.Resp.Uncompressed, "the stream was compressed: compression must leave the SSE route alone")
	s.Opened(t)
	publish := func(body string, want int) string {
		t.Helper()
		resp, err := hc.Post(base+"/publish", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		var out struct{ ID, Error string }
		raw, _ := io.ReadAll(resp.Body)
		require.Equal(t, want, resp.StatusCode, "POST /publish %s: %s", body, raw)
		require.NoError(t, json.Unmarshal(raw, &out), "POST /publish %s: %s", body, raw)
		return out.ID
	}
	id1 := publish(`{"topic":"news","event":"headline","data":"hello"}`, http.StatusOK)
	id2 := publish(`{"user":"`+user.String()+`","event":"note","data":"for you"}`, http.StatusOK)
	publish(`{"topic":"news"}`, http.StatusBadRequest) // no event type
	for _, want := range []core.Event{{ID: id1, Type: "headline", Data: "hello"}, {ID: id2, Type: "note", Data: "for you"}} {
		assert.Equal(t, want, s.Event(t))
	}

	stop()
	s.Comment(t, string(core.ReasonShutdown))
	_, retry, err := s.End(t)
	assert.Equal(t, io.EOF, err, "the stream must end cleanly")
	assert.GreaterOrEqual(t, retry, time.Second, "the shutdown's retry hint")
	assert.NoError(t, <-done, "serve")
}
