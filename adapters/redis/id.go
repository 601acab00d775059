package sseredis

import (
	"strconv"
	"strings"
)

// streamID is a parsed Redis stream entry ID, "<ms>-<seq>". Event IDs are
// these strings verbatim, so they order the same way here and in Redis.
type streamID struct{ ms, seq uint64 }

// originID precedes every ID Redis generates ("0-0" is never an entry).
const originID = "0-0"

// parseID parses a complete stream ID. It accepts only what Redis issues:
// two decimal numbers joined by "-", so a client cannot smuggle range
// syntax ("-", "+", "(") into a command.
func parseID(s string) (streamID, bool) {
	ms, seq, ok := strings.Cut(s, "-")
	if !ok || !digits(ms) || !digits(seq) {
		return streamID{}, false
	}
	a, err1 := strconv.ParseUint(ms, 10, 64)
	b, err2 := strconv.ParseUint(seq, 10, 64)
	if err1 != nil || err2 != nil {
		return streamID{}, false
	}
	return streamID{a, b}, true
}

func digits(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (a streamID) less(b streamID) bool {
	return a.ms < b.ms || a.ms == b.ms && a.seq < b.seq
}

func (a streamID) isZero() bool { return a.ms == 0 && a.seq == 0 }

func (a streamID) String() string {
	var buf [41]byte
	b := strconv.AppendUint(buf[:0], a.ms, 10)
	b = append(b, '-')
	return string(strconv.AppendUint(b, a.seq, 10))
}

// An event ID is a stream entry ID, prefixed with its shard when the
// backend has more than one ("3:1712345678901-0"). With one shard it is
// the entry ID verbatim, as it was before shards existed, so that a
// cluster upgraded with Shards = 1 keeps its clients' positions.

// parseEventID splits an event ID into its shard and entry: ok is false
// when id is malformed or names a shard out of range for n shards. Plain
// entry IDs (no shard) are shard 0 when n is 1, and refused otherwise,
// except originID, which precedes every entry of every shard and comes
// back as shard -1.
func parseEventID(id string, n int) (shard int, entry string, sid streamID, ok bool) {
	if id == originID {
		return -1, originID, streamID{}, true
	}
	entry = id
	if n > 1 {
		pre, rest, found := strings.Cut(id, ":")
		if !found || !digits(pre) || len(pre) > 1 && pre[0] == '0' {
			return 0, "", streamID{}, false
		}
		i, err := strconv.Atoi(pre)
		if err != nil || i >= n {
			return 0, "", streamID{}, false
		}
		shard, entry = i, rest
	}
	sid, ok = parseID(entry)
	return shard, entry, sid, ok
}
