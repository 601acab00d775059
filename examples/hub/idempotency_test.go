package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
)

// postKeyed is post with an Idempotency-Key header (none when key is "").
func postKeyed(t *testing.T, c *http.Client, base, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/publish", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func idOf(t *testing.T, body string) string {
	t.Helper()
	var a struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &a), body)
	require.NotEmpty(t, a.ID, body)
	return a.ID
}

// A single publish retried with the same Idempotency-Key answers the
// first ID and is delivered once.
func TestPublishIdempotencyKeyHeader(t *testing.T) {
	srv, _ := newTestHub(t, core.Config{}, hubConfig{})
	dec, stop := openStream(t, srv.Client(), srv.URL+"/events?topic=news")
	defer stop()

	status, body := postKeyed(t, srv.Client(), srv.URL, "order-42", `{"topic":"news","event":"note","data":"first"}`)
	require.Equal(t, http.StatusOK, status, body)
	first := idOf(t, body)
	status, body = postKeyed(t, srv.Client(), srv.URL, "order-42", `{"topic":"news","event":"note","data":"retry"}`)
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, first, idOf(t, body), "a retry answers the first ID")
	// The same key in the body is the same key.
	status, body = postKeyed(t, srv.Client(), srv.URL, "", `{"topic":"news","event":"note","data":"body key","idempotencyKey":"order-42"}`)
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, first, idOf(t, body))
	status, body = post(t, srv.Client(), srv.URL, "", `{"topic":"news","event":"note","data":"unkeyed"}`)
	require.Equal(t, http.StatusOK, status, body)
	next := idOf(t, body)

	ev, err := dec.Next()
	require.NoError(t, err)
	assert.Equal(t, core.Event{ID: first, Type: "note", Data: "first"}, ev)
	ev, err = dec.Next()
	require.NoError(t, err)
	assert.Equal(t, core.Event{ID: next, Type: "note", Data: "unkeyed"}, ev, "the retries were not sent")
}

func TestPublishIdempotencyKeyRefused(t *testing.T) {
	srv, b := newTestHub(t, core.Config{}, hubConfig{})
	event := `{"topic":"news","event":"note"}`
	tests := []struct {
		name, key, body string
		field           string
	}{
		{"header with a space", "a b", event, "Idempotency-Key"},
		{"header too long", strings.Repeat("k", core.MaxIdempotencyKeyLen+1), event, "Idempotency-Key"},
		{"header and body differ", "a", `{"topic":"news","event":"note","idempotencyKey":"b"}`, "Idempotency-Key"},
		{"body key not ASCII", "", `{"topic":"news","event":"note","idempotencyKey":"naïve"}`, "idempotencyKey"},
		{"body key not a string", "", `{"topic":"news","event":"note","idempotencyKey":7}`, "idempotencyKey"},
		{"header on a batch", "k", batch(event, event), "Idempotency-Key"},
		{"batch item key", "", batch(event, `{"topic":"news","event":"note","idempotencyKey":"tab\t"}`), "[1].idempotencyKey"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := postKeyed(t, srv.Client(), srv.URL, tc.key, tc.body)
			assert.Equal(t, http.StatusBadRequest, status, body)
			assert.Equal(t, tc.field, decodeError(t, body).Field, body)
		})
	}
	assert.Zero(t, b.Stats().Published, "refused publishes must send nothing")
}

// A batch whose items carry keys can be retried whole: the items already
// published answer their first IDs and are not sent again.
func TestPublishBatchIdempotencyKeys(t *testing.T) {
	srv, _ := newTestHub(t, core.Config{}, hubConfig{})
	dec, stop := openStream(t, srv.Client(), srv.URL+"/events?topic=news")
	defer stop()

	items := batch(
		`{"topic":"news","event":"note","data":"one","idempotencyKey":"k1"}`,
		`{"topic":"news","event":"note","data":"two","idempotencyKey":"k2"}`,
		`{"topic":"news","event":"note","data":"three"}`,
	)
	status, body := post(t, srv.Client(), srv.URL, "", items)
	require.Equal(t, http.StatusOK, status, body)
	first, _ := decodeBatchAnswer(t, body)
	require.Len(t, first.IDs, 3)

	status, body = post(t, srv.Client(), srv.URL, "", items)
	require.Equal(t, http.StatusOK, status, body)
	again, _ := decodeBatchAnswer(t, body)
	require.Len(t, again.IDs, 3)
	assert.Equal(t, first.IDs[:2], again.IDs[:2], "keyed items answer their first IDs")
	assert.NotEqual(t, first.IDs[2], again.IDs[2], "an item without a key is a new event")

	want := []core.Event{
		{ID: first.IDs[0], Type: "note", Data: "one"},
		{ID: first.IDs[1], Type: "note", Data: "two"},
		{ID: first.IDs[2], Type: "note", Data: "three"},
		{ID: again.IDs[2], Type: "note", Data: "three"},
	}
	for _, w := range want {
		ev, err := dec.Next()
		require.NoError(t, err)
		assert.Equal(t, w, ev)
	}
}
