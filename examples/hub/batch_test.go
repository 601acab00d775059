package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
)

// batchAnswer is the body of a batch publish: the IDs on success, and on
// an error the apiError members with, once publishing started, the IDs of
// the events already published.
type batchAnswer struct {
	IDs   []string `json:"ids"`
	ID    *string  `json:"id"`
	Error string   `json:"error"`
	Field string   `json:"field"`
	Index *int     `json:"index"`
}

func decodeBatchAnswer(t *testing.T, body string) (batchAnswer, map[string]json.RawMessage) {
	t.Helper()
	var a batchAnswer
	var members map[string]json.RawMessage
	err := json.Unmarshal([]byte(body), &a)
	require.NoError(t, err, "answer is not JSON: %q", body)
	_ = json.Unmarshal([]byte(body), &members)
	return a, members
}

// batch joins items into a JSON array.
func batch(items ...string) string { return "[" + strings.Join(items, ",") + "]" }

// TestPublishBatchDelivers: a batch with mixed targets is published in
// item order; the answer lists every ID in item order, and a subscriber
// receives exactly the events it is entitled to, in order, with those IDs.
func TestPublishBatchDelivers(t *testing.T) {
	srv, b := newTestHub(t, core.Config{}, hubConfig{})
	user, other := uuid.NewString(), uuid.NewString()
	dec, stop := openStream(t, srv.Client(), srv.URL+"/events?user="+user+"&topic=news&tenant=acme")
	defer stop()

	items := []struct {
		body     string
		received bool
		typ      string
		data     string
	}{
		{`{"tenant":"acme","user":"` + user + `","event":"note","data":"one"}`, true, "note", "one"},
		{`{"tenant":"acme","topic":"news","event":"headline","data":{"n": 2}}`, true, "headline", `{"n":2}`},
		{`{"tenant":"acme","topic":"sports","event":"skip"}`, false, "", ""},
		{`{"tenant":"acme","user":"` + other + `","event":"skip"}`, false, "", ""},
		{`{"tenant":"acme","broadcast":true,"event":"all","data":5}`, true, "all", "5"},
		{`{"tenant":"acme","user":"` + user + `","topic":"news","event":"both","data":"once"}`, true, "both", "once"},
		{`{"broadcast":true,"event":"elsewhere"}`, false, "", ""},
		{`{"tenant":"acme","topic":"news","event":"last","data":"a\nb"}`, true, "last", "a\nb"},
	}
	var bodies []string
	for _, it := range items {
		bodies = append(bodies, it.body)
	}
	status, body := post(t, srv.Client(), srv.URL, "", "\n "+batch(bodies...)+"\n")
	require.Equal(t, http.StatusOK, status, "batch: %d %s", status, body)
	a, members := decodeBatchAnswer(t, body)
	require.Len(t, members, 1, "answer %s: want only ids, %d of them", body, len(items))
	require.Len(t, a.IDs, len(items), "answer %s: want only ids, %d of them", body, len(items))
	seen := map[string]bool{}
	for _, id := range a.IDs {
		require.NotEmpty(t, id, "IDs %v: empty or repeated", a.IDs)
		require.False(t, seen[id], "IDs %v: empty or repeated", a.IDs)
		seen[id] = true
	}
	for k, it := range items {
		if !it.received {
			continue
		}
		ev, err := dec.Next()
		require.NoError(t, err)
		assert.Equal(t, a.IDs[k], ev.ID, "item %d: id", k)
		assert.Equal(t, it.typ, ev.Type, "item %d: type", k)
		assert.Equal(t, it.data, ev.Data, "item %d: data", k)
	}
	// Nothing else of the batch reached the stream: the next event is the
	// next publish.
	status, body = post(t, srv.Client(), srv.URL, "", `{"tenant":"acme","user":"`+user+`","event":"after"}`)
	require.Equal(t, http.StatusOK, status, "single publish after the batch: %d %s", status, body)
	var single map[string]string
	err := json.Unmarshal([]byte(body), &single)
	require.NoError(t, err, "a single object must still answer {\"id\"}: %s", body)
	require.Len(t, single, 1, "a single object must still answer {\"id\"}: %s", body)
	require.NotEqual(t, "", single["id"], "a single object must still answer {\"id\"}: %s", body)
	ev, err := dec.Next()
	require.NoError(t, err, "after the batch: %+v, %v", ev, err)
	require.Equal(t, "after", ev.Type, "after the batch: %+v, %v", ev, err)
	require.Equal(t, single["id"], ev.ID, "after the batch: %+v, %v", ev, err)
	got := b.Stats().Published
	assert.Equal(t, uint64(len(items)+1), got, "published %d, want %d", got, len(items)+1)
}

// TestPublishBatchValidation: a bad item anywhere refuses the whole batch
// before anything is published, naming the item and the field; so do an
// empty array, too many items and a malformed array.
func TestPublishBatchValidation(t *testing.T) {
	srv, b := newTestHub(t, core.Config{MaxEventSize: 1024}, hubConfig{maxEventSize: 1024, maxBatch: 5})
	user := uuid.NewString()
	good := `{"broadcast":true,"event":"ok","data":"fine"}`
	big := strings.Repeat("x", 2000)
	none := -1
	tests := []struct {
		name, body string
		status     int
		field      string
		index      int
	}{
		{"user not a UUID", batch(good, good, `{"user":"alice","event":"a"}`), 400, "[2].user", 2},
		{"nil user", batch(good, `{"user":"00000000-0000-0000-0000-000000000000","event":"a"}`), 400, "[1].user", 1},
		{"unknown field", batch(good, `{"broadcast":true,"event":"a","users":["x"]}`), 400, "[1].users", 1},
		{"wrong type", batch(`{"broadcast":"yes","event":"a"}`, good), 400, "[0].broadcast", 0},
		{"id present", batch(good, `{"broadcast":true,"event":"a","id":"42"}`), 400, "[1].id", 1},
		{"missing event", batch(good, good, good, `{"broadcast":true}`), 400, "[3].event", 3},
		{"no target", batch(good, `{"event":"a"}`), 400, "[1].target", 1},
		{"bad topic", batch(good, good, `{"topic":"no spaces","event":"a"}`), 400, "[2].topic", 2},
		{"bad tenant", batch(good, `{"tenant":"a/b","broadcast":true,"event":"a"}`), 400, "[1].tenant", 1},
		{"event with newline", batch(good, `{"broadcast":true,"event":"a\nid: 1"}`), 400, "[1].event", 1},
		{"oversize event", batch(good, good, good, good, `{"user":"`+user+`","event":"a","data":"`+big+`"}`), 400, "[4].data", 4},
		{"item not an object", batch(good, `42`), 400, "[1]", 1},
		{"item null", batch(good, `null`), 400, "[1]", 1},
		{"item an array", batch(`[]`, good), 400, "[0]", 0},
		{"two bad items: the first is named", batch(good, `{"event":"a"}`, `{"user":"alice","event":"a"}`), 400, "[1].target", 1},
		{"empty array", `[]`, 400, "body", none},
		{"empty array with space", ` [ ] `, 400, "body", none},
		{"too many items", batch(good, good, good, good, good, good), 413, "body", none},
		{"unterminated", `[` + good + `,`, 400, "body", none},
		{"only a bracket", `[`, 400, "body", none},
		{"missing comma", `[` + good + good + `]`, 400, "body", none},
		{"trailing data", batch(good) + ` {}`, 400, "body", none},
		{"two arrays", batch(good) + batch(good), 400, "body", none},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(t, srv.Client(), srv.URL, "", tt.body)
			require.Equal(t, tt.status, status, "status %d, want %d: %s", status, tt.status, body)
			a, members := decodeBatchAnswer(t, body)
			assert.NotEmpty(t, a.Error, "got %s", body)
			assert.Equal(t, tt.field, a.Field, "got %s", body)
			if tt.index == none {
				assert.Nil(t, a.Index, "want no index: %s", body)
			} else if assert.NotNil(t, a.Index, "want index %d: %s", tt.index, body) {
				assert.Equal(t, tt.index, *a.Index, "index: %s", body)
			}
			_, ok := members["ids"]
			assert.False(t, ok, "ids in a refusal before publishing: %s", body)
		})
	}
	got := b.Stats().Published
	assert.Equal(t, uint64(0), got, "refused batches published %d events", got)
}

// TestPublishBatchBodyLimit: a batch may be larger than one object may be,
// up to the single limit per allowed event; beyond that it is a 413.
func TestPublishBatchBodyLimit(t *testing.T) {
	srv, b := newTestHub(t, core.Config{MaxEventSize: 4096}, hubConfig{maxEventSize: 4096, maxBatch: 4})
	single := int64(2*4096 + 4096)
	item := func(n int) string { return `{"broadcast":true,"event":"a","data":"` + strings.Repeat("x", n) + `"}` }

	// 4 x 4,000 bytes of data: more than one object may be, a valid batch.
	body := batch(item(4000), item(4000), item(4000), item(4000))
	require.Greater(t, int64(len(body)), single, "test body of %d bytes is within the single limit %d", len(body), single)
	status, answer := post(t, srv.Client(), srv.URL, "", body)
	require.Equal(t, http.StatusOK, status, "batch of %d bytes: %s", len(body), answer)
	// The same data as one object is over the single limit.
	status, answer = post(t, srv.Client(), srv.URL, "", item(4*4000))
	require.Equal(t, http.StatusRequestEntityTooLarge, status, "one object of %d bytes: %s", 4*4000, answer)
	// Beyond 4 x the single limit: refused before it is read.
	body = batch(item(13000), item(13000), item(13000), item(13000))
	status, answer = post(t, srv.Client(), srv.URL, "", body)
	require.Equal(t, http.StatusRequestEntityTooLarge, status, "batch of %d bytes: %d %s", len(body), status, answer)
	e := decodeError(t, answer)
	assert.Equal(t, "body", e.Field, "got %+v", e)
	assert.Contains(t, e.Error, fmt.Sprint(4*single), "error does not name the limit")
	got := b.Stats().Published
	assert.Equal(t, uint64(4), got, "published %d, want the 4 of the valid batch", got)

	for _, tc := range []struct {
		single   int64
		maxBatch int
		want     int64
	}{
		{2*core.DefaultMaxEventSize + 4096, defaultMaxBatch, maxBatchBodyCap},
		{6144, 3, 3 * 6144},
		{32 << 20, 10, 32 << 20},
		{1 << 40, maxMaxBatch, 1 << 40},
	} {
		got := batchBodyLimit(tc.single, tc.maxBatch)
		assert.Equal(t, tc.want, got, "batchBodyLimit(%d, %d) = %d, want %d", tc.single, tc.maxBatch, got, tc.want)
	}
}

// failingBus delivers in-process like core's own bus until ok publishes
// have gone through, then fails every publish.
type failingBus struct {
	core.History
	mu      sync.Mutex
	ok      int
	deliver func(*core.Message)
}

func (f *failingBus) Publish(ctx context.Context, m *core.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ok == 0 {
		return errors.New("bus down")
	}
	f.ok--
	if err := f.History.Append(ctx, m); err != nil {
		return err
	}
	if f.deliver != nil {
		f.deliver(m)
	}
	return nil
}

func (f *failingBus) Attach(deliver func(*core.Message)) (func(), error) {
	f.mu.Lock()
	f.deliver = deliver
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		f.deliver = nil
		f.mu.Unlock()
	}, nil
}

// TestPublishBatchFailsMidway: when publishing fails after some events of
// a valid batch went out, the error answer lists their IDs and names the
// item that failed; those events did reach the subscriber.
func TestPublishBatchFailsMidway(t *testing.T) {
	hist := core.NewMemoryHistory(core.HistoryLimits{Events: 64})
	srv, _ := newTestHub(t, core.Config{Backend: &failingBus{History: hist, ok: 2}}, hubConfig{})
	user := uuid.NewString()
	dec, stop := openStream(t, srv.Client(), srv.URL+"/events?user="+user)
	defer stop()
	item := func(n int) string { return fmt.Sprintf(`{"user":%q,"event":"e","data":"%d"}`, user, n) }

	status, body := post(t, srv.Client(), srv.URL, "", batch(item(0), item(1), item(2), item(3)))
	require.Equal(t, http.StatusInternalServerError, status, "status %d, want 500: %s", status, body)
	a, _ := decodeBatchAnswer(t, body)
	require.Len(t, a.IDs, 2, "answer %s: want the 2 IDs published, index 2, and a fixed text (never the error's)", body)
	require.NotNil(t, a.Index, "answer %s: want the 2 IDs published, index 2, and a fixed text (never the error's)", body)
	require.Equal(t, 2, *a.Index, "answer %s: want the 2 IDs published, index 2, and a fixed text (never the error's)", body)
	require.Equal(t, "[2]", a.Field, "answer %s: want the 2 IDs published, index 2, and a fixed text (never the error's)", body)
	require.Equal(t, "publish failed", a.Error, "answer %s: want the 2 IDs published, index 2, and a fixed text (never the error's)", body)
	for k, id := range a.IDs {
		ev, err := dec.Next()
		require.NoError(t, err)
		assert.Equal(t, id, ev.ID, "event %d: id", k)
		assert.Equal(t, fmt.Sprint(k), ev.Data, "event %d: data", k)
	}
}

// TestPublishBatchWhileClosing: a batch sent while the hub shuts down is a
// 503 that says none of it was published.
func TestPublishBatchWhileClosing(t *testing.T) {
	srv, b := newTestHub(t, core.Config{}, hubConfig{})
	require.NoError(t, b.Close(context.Background()))
	status, body := post(t, srv.Client(), srv.URL, "", batch(`{"broadcast":true,"event":"a"}`, `{"broadcast":true,"event":"b"}`))
	require.Equal(t, http.StatusServiceUnavailable, status, "status %d: %s", status, body)
	a, members := decodeBatchAnswer(t, body)
	// The broker refuses the first item before anything is published, so
	// the answer lists no IDs.
	ids := string(members["ids"])
	assert.Contains(t, []string{"", "[]"}, ids, "answer %s: want no IDs", body)
	if assert.NotNil(t, a.Index, "answer %s: want index 0", body) {
		assert.Equal(t, 0, *a.Index, "answer %s: want index 0", body)
	}

}
