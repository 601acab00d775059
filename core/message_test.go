package core

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDataIsCopied checks that a []byte or json.RawMessage payload belongs
// to the caller again once the call returns: overwriting it changes
// neither the live event nor what a reconnecting client is replayed. The
// broker borrows the bytes while it validates them and then copies them
// next to the frame, inside the message for a small payload and in an
// allocation of its own for a large one.
func TestDataIsCopied(t *testing.T) {
	for _, size := range []int{8, 100, 4000} {
		t.Run(fmt.Sprintf("%d bytes", size), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBroker(t, Config{})
				ctx := context.Background()
				u := user()
				live := connect(t, b, SubscribeRequest{Identity: Identity{User: u}})

				want := strings.Repeat("a", size)
				buf := []byte(want)
				require.NoError(t, b.SendToUser(ctx, u, "bytes", buf))
				raw := json.RawMessage(`"` + strings.Repeat("b", size) + `"`)
				wantRaw := string(raw)
				require.NoError(t, b.SendToUser(ctx, u, "raw", raw))
				for i := range buf {
					buf[i] = 'z'
				}
				for i := range raw {
					raw[i] = 'z'
				}

				first, second := live.next(), live.next()
				assert.Equal(t, want, first.Data)
				assert.Equal(t, wantRaw, second.Data)

				// A client that saw nothing yet is replayed the same bytes.
				late := connect(t, b, SubscribeRequest{Identity: Identity{User: u}, LastEventID: b.backend.Origin()})
				assert.Equal(t, want, late.next().Data)
				assert.Equal(t, wantRaw, late.next().Data)
				assert.NoError(t, live.close())
				assert.NoError(t, late.close())
			})
		})
	}
}

// TestMessageIDs checks the IDs MemoryHistory writes into the message
// itself: unique, increasing, and stable after the message was copied.
func TestMessageIDs(t *testing.T) {
	h := NewMemoryHistory(HistoryLimits{Events: 4})
	ctx := context.Background()
	var ids []string
	for range 3 {
		m := &Message{}
		require.NoError(t, h.Append(ctx, m))
		cp := *m
		m.Event.ID = "" // the copy keeps its own string
		ids = append(ids, cp.Event.ID)
	}
	assert.Equal(t, []string{h.part("").epoch + "-1", h.part("").epoch + "-2", h.part("").epoch + "-3"}, ids)

	// A message that already has an ID (a second Append, say) gets a new
	// string; the first one is not overwritten.
	m := &Message{}
	require.NoError(t, h.Append(ctx, m))
	first := m.Event.ID
	require.NoError(t, h.Append(ctx, m))
	assert.Equal(t, h.part("").epoch+"-4", first)
	assert.Equal(t, h.part("").epoch+"-5", m.Event.ID)
}

// TestMessageSize keeps a Message at one allocator size class: a field
// added without shrinking inline would cost every message 32 bytes more
// and make Message.Cost undercount.
func TestMessageSize(t *testing.T) {
	assert.Equal(t, uintptr(messageSize), unsafe.Sizeof(Message{}))
}
