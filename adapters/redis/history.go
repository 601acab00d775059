package sseredis

import (
	"context"
	"fmt"

	"github.com/ssekit/ssekit/core"
)

// replayPage is how many entries one XRANGE of a replay reads.
const replayPage = 512

// Replay implements core.History with XRANGE over (afterID, uptoID] of the
// tenant's shard,
// keeping the tenant's entries. It proves the replay complete from the
// links every entry carries: the first entry after afterID names afterID
// as its predecessor, or, when afterID itself was trimmed, the tenant's
// first entry after it names a predecessor no newer than afterID (nothing
// of the tenant was lost). Otherwise it returns an error wrapping
// core.ErrEventExpired (afterID was trimmed and events of the tenant with
// it) or core.ErrEventUnknown (malformed, newer than the stream, or from
// before Redis lost the stream). The common reconnect, a client that is up
// to date, costs no round trip.
//
// The tenant's events are all in its shard's stream. An ID of another
// shard (the number of shards changed since it was issued) or of a shard
// out of range is core.ErrEventUnknown: the client gets the gap event.
func (b *Backend) Replay(ctx context.Context, tenant, afterEventID, uptoEventID string, fn func(*core.Message) bool) error {
	sh, afterID, after, ok := b.entryOf(tenant, afterEventID)
	if !ok {
		return fmt.Errorf("%w: %q", core.ErrEventUnknown, short(afterEventID))
	}
	_, uptoID, upto, ok := b.entryOf(tenant, uptoEventID)
	if uptoEventID == "" || !ok {
		// This broker has delivered nothing of the tenant: there is
		// nothing to replay, but the client's position must be real.
		if after.isZero() {
			return nil
		}
		return b.classify(ctx, sh, afterEventID, afterID, after)
	}
	if after == upto {
		return nil
	}
	if upto.less(after) {
		// The client is ahead of this broker even after the catch-up wait
		// (or never saw afterID here at all).
		return b.classify(ctx, sh, afterEventID, afterID, after)
	}
	cursor := "(" + afterID
	first, checkTenant := true, false
	for {
		page, err := b.client.XRangeN(ctx, sh.stream, cursor, uptoID, replayPage).Result()
		if err != nil {
			return fmt.Errorf("%w: %q: reading history: %w", core.ErrEventUnknown, short(afterEventID), err)
		}
		if first {
			first = false
			if len(page) == 0 {
				return b.classify(ctx, sh, afterEventID, afterID, after)
			}
			if prev, _ := page[0].Values[fieldGlobalPrev].(string); prev != afterID {
				// afterID is not the entry right before the range: it was
				// trimmed (then replay only if the tenant lost nothing after
				// it), or Redis never held it.
				checkTenant = after.isZero()
				if !checkTenant {
					switch err := b.classify(ctx, sh, afterEventID, afterID, after); err {
					case core.ErrEventExpired:
						checkTenant = true
					case nil:
					default:
						return err
					}
				}
			}
		}
		for _, x := range page {
			if n, _ := x.Values[fieldTenant].(string); n != tenant {
				continue
			}
			if checkTenant {
				checkTenant = false
				p, ok := parseID(stringValue(x.Values[fieldTenantPrev]))
				if !ok || after.less(p) {
					return fmt.Errorf("%w: %q", core.ErrEventExpired, short(afterEventID))
				}
			}
			m, err := decodeMessage(sh.prefix+x.ID, tenant, []byte(stringValue(x.Values[fieldPayload])))
			if err != nil {
				b.opt.ErrorLog(fmt.Errorf("ssekit/redis: entry %s: %w", x.ID, err))
				return fmt.Errorf("%w: %q: entry %s is unreadable", core.ErrEventUnknown, short(afterEventID), x.ID)
			}
			if !fn(m) {
				return nil
			}
		}
		if len(page) < replayPage {
			return nil
		}
		cursor = "(" + page[len(page)-1].ID
	}
}

// classify says whether id (the entry raw of sh, event ID eventID), which
// is not the predecessor of the entries a replay needs, is a real
// position: nil when the stream holds it, core.ErrEventExpired
// (unwrapped, for Replay to test) when it was trimmed, an error wrapping
// core.ErrEventUnknown otherwise.
func (b *Backend) classify(ctx context.Context, sh *shard, eventID, raw string, id streamID) error {
	unknown := fmt.Errorf("%w: %q", core.ErrEventUnknown, short(eventID))
	pipe := b.client.Pipeline()
	infoCmd := pipe.XInfoStream(ctx, sh.stream)
	rootCmd := pipe.HGet(ctx, sh.heads, "#")
	_, _ = pipe.Exec(ctx)
	info, err := infoCmd.Result()
	if isNoSuchKey(err) {
		return unknown
	}
	if err != nil {
		return fmt.Errorf("%w: reading history: %w", unknown, err)
	}
	if last, ok := parseID(info.LastGeneratedID); !ok || last.less(id) {
		return unknown // newer than anything Redis issued
	}
	if root, ok := parseID(rootCmd.Val()); ok && id.less(root) {
		return unknown // from before the stream began: Redis lost it since
	}
	if first, ok := parseID(info.FirstEntry.ID); ok && !id.less(first) {
		// Inside the stream's range: it must be an entry.
		got, err := b.client.XRange(ctx, sh.stream, raw, raw).Result()
		if err != nil {
			return fmt.Errorf("%w: reading history: %w", unknown, err)
		}
		if len(got) == 1 {
			return nil
		}
		return unknown
	}
	return core.ErrEventExpired // trimmed
}

func stringValue(v any) string {
	s, _ := v.(string)
	return s
}

func short(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
