package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/auth"
)

// Native fuzz tests of what the hub parses from the network: the publish
// body and the query strings. Their seeds run with the unit tests; to
// search further, run for example
//
//	go test -run '^$' -fuzz FuzzPublishBody -fuzztime 1m ./hub/

// FuzzPublishBody posts arbitrary bytes as a JSON publish: the hub never
// panics, always answers JSON with a known status, accepts only valid
// JSON, and publishes exactly the events it answers IDs for.
func FuzzPublishBody(f *testing.F) {
	for _, seed := range []string{
		`{"broadcast":true,"event":"e","data":"x"}`,
		`{"tenant":"acme","topic":"news","event":"headline","data":{"a":[1,2]}}`,
		`{"user":"4f1c2a8e-0d7b-4c55-9a53-2f1e7f0c9b11","event":"dm","data":42}`,
		`[{"broadcast":true,"event":"a"},{"topic":"t","event":"b","data":null}]`,
		`  [ ]`, `[1]`, `[[]]`, `[{"broadcast":true,"event":"a"},`, `{}`, `null`, `"x"`, `1e999`, ``, ` `,
		`{"broadcast":true,"event":"e"} {"broadcast":true,"event":"e"}`,
		`{"broadcast":true,"event":"a\nb"}`,
		`{"broadcast":true,"event":"e","data":"line\n\nevent: evil\ndata: x"}`,
		`{"broadcast":true,"event":"e","id":"7"}`,
		`{"broadcast":true,"event":"e","extra":1}`,
		`{"broadcast":"yes","event":"e"}`,
		`{"user":"alice","event":"e"}`,
		`{"tenant":"a/b","broadcast":true,"event":"e"}`,
		`{"topic":"a b","event":"e"}`,
		`{"broadcast":true,"event":"e","data":"\ud800"}`,
		`{"broadcast":true,"event":"e","data":"\u2028\u0000"}`,
		"\xef\xbb\xbf{\"broadcast\":true,\"event\":\"e\"}",
		`{"broadcast":true,"event":"e","data":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`,
		`{"broadcast":true,"event":"e","data":"` + strings.Repeat("x", 3000) + `"}`,
		`[` + strings.Repeat(`{"broadcast":true,"event":"e"},`, 5) + `{"broadcast":true,"event":"e"}]`,
	} {
		f.Add(seed)
	}
	b, err := core.New(core.Config{MaxEventSize: 1024, HistorySize: 64, Authenticator: core.InsecureQueryAuthenticator()})
	require.NoError(f, err)
	f.Cleanup(func() { _ = b.Close(context.Background()) })
	h, err := newHub(b, hubConfig{maxEventSize: 1024, maxBatch: 4})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, body string) {
		before := b.Stats().Published
		req := httptest.NewRequest(http.MethodPost, "/publish", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		published := b.Stats().Published - before

		var answer struct {
			ID    string   `json:"id"`
			IDs   []string `json:"ids"`
			Error string   `json:"error"`
		}
		err := json.Unmarshal(rec.Body.Bytes(), &answer)
		require.NoError(t, err, "answer %d is not JSON: %q", rec.Code, rec.Body.String())
		switch rec.Code {
		case http.StatusOK:
			require.True(t, json.Valid([]byte(body)), "accepted invalid JSON %q", body)
			ids := answer.IDs
			if answer.ID != "" {
				ids = append(ids, answer.ID)
			}
			require.NotEmpty(t, ids, "answered %d IDs, published %d events: %s", len(ids), published, rec.Body.String())
			require.Equal(t, published, uint64(len(ids)), "answered %d IDs, published %d events: %s", len(ids), published, rec.Body.String())
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			require.NotEmpty(t, answer.Error, "%d without an error: %s", rec.Code, rec.Body.String())

			require.Equal(t, uint64(0), published, "a refused body (%d) published %d events", rec.Code, published)
		default:
			require.FailNow(t, fmt.Sprintf("status %d for %q: %s", rec.Code, body, rec.Body.String()))
		}
	})
}

// FuzzOnlineQuery sends arbitrary query strings to /online in auth mode,
// where two tenants have a user online: no caller without credentials
// learns anything, a member of acme never sees globex's user, an admin
// gets a list or a 400.
func FuzzOnlineQuery(f *testing.F) {
	for _, seed := range []string{
		"", "tenant=acme", "tenant=globex", "tenant=", "tenant", "tenant=acme&tenant=globex",
		"tenant=globex&tenant=acme", "Tenant=globex", "tenant=%67lobex", "tenant=glo%00bex", "tenant=%zz",
		"tenant=acme;tenant=globex", "tenant=a%2Fb", "tenant=" + strings.Repeat("a", 300), "tenant=%C3%A9", "&&&=&",
	} {
		f.Add(seed)
	}
	secret := auth.NewSecret()
	o, err := parseOptions([]string{"-jwt-secret", string(secret)}, envMap(nil), &strings.Builder{})
	require.NoError(f, err)
	b, err := core.New(o.broker)
	require.NoError(f, err)
	h, err := newHub(b, o.hub)
	require.NoError(f, err)
	srv := httptest.NewServer(h)
	f.Cleanup(func() { _ = b.Close(context.Background()); srv.Close() })
	mint := func(g auth.Grant, admin bool) string {
		minter := o.hub.jwt.Mint
		if admin {
			minter = o.hub.jwt.MintAdmin
		}
		tok, err := minter(secret, g)
		require.NoError(f, err)
		return tok
	}
	alice, carol := uuid.New(), uuid.New()
	for _, g := range []auth.Grant{{User: alice, Tenant: "acme"}, {User: carol, Tenant: "globex"}} {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
		req.AddCookie(&http.Cookie{Name: "ssekit_token", Value: mint(g, false)})
		res, err := srv.Client().Do(req)
		if err != nil || res.StatusCode != http.StatusOK {
			cancel()
			require.FailNow(f, fmt.Sprintf("stream of %s: %v %v", g.Tenant, res, err))
		}
		f.Cleanup(func() { cancel(); res.Body.Close() })
	}
	member := mint(auth.Grant{User: uuid.New(), Tenant: "acme"}, false)
	admin := mint(auth.Grant{User: uuid.New(), Tenant: "acme"}, true)

	f.Fuzz(func(t *testing.T, rawQuery string) {
		get := func(token string) *httptest.ResponseRecorder {
			req := httptest.NewRequest(http.MethodGet, "/online", nil)
			req.URL.RawQuery = rawQuery
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.True(t, json.Valid(rec.Body.Bytes()), "answer %d is not JSON: %q", rec.Code, rec.Body.String())
			return rec
		}
		rec := get("")
		require.Equal(t, http.StatusUnauthorized, rec.Code, "no credentials: %s", rec.Body.String())
		require.NotContains(t, rec.Body.String(), "-", "no credentials")

		// What the hub reads: the first tenant value, the token's tenant
		// when there is none.
		want := "acme"
		if vs, ok := (url.Values(parseQuery(rawQuery)))["tenant"]; ok && len(vs) > 0 {
			want = vs[0]
		}
		rec = get(member)
		require.NotContains(t, rec.Body.String(), carol.String(), "a member of acme saw globex's user")
		require.Contains(t, []int{http.StatusOK, http.StatusForbidden}, rec.Code, "member: status %d: %s", rec.Code, rec.Body.String())
		if rec.Code == http.StatusOK {
			require.Equal(t, "acme", want, "a member of acme listed another tenant: %s", rec.Body.String())
			require.Contains(t, rec.Body.String(), alice.String(), "a member of acme did not see acme's user")
		}

		rec = get(admin)
		require.Contains(t, []int{http.StatusOK, http.StatusBadRequest}, rec.Code, "admin: status %d: %s", rec.Code, rec.Body.String())
		if rec.Code == http.StatusOK {
			var users []string
			err := json.Unmarshal(rec.Body.Bytes(), &users)
			require.NoError(t, err, "admin: not a list: %s", rec.Body.String())
			require.NoError(t, core.ValidateTenant(want), "admin: listed invalid tenant %q", want)
		}
	})
}

// parseQuery is what the hub reads from a raw query: net/url's parse,
// keeping what it could parse (Request.URL.Query drops the error too).
func parseQuery(raw string) url.Values {
	v, _ := url.ParseQuery(raw)
	return v
}

// FuzzStreamQuery opens /events with arbitrary query strings (the user,
// tenant and topics the demo stream trusts) on a request whose client is
// already gone: whatever the answer, the hub never panics, a refusal is
// never a stream, and no connection stays registered.
func FuzzStreamQuery(f *testing.F) {
	for _, seed := range []string{
		"", "user=4f1c2a8e-0d7b-4c55-9a53-2f1e7f0c9b11", "user=alice", "user=00000000-0000-0000-0000-000000000000",
		"tenant=acme&topic=news&topic=sport", "topic=", "topic=a%0Ab", "topic=a%0D%0Aevent:%20x", "tenant=a%2Fb",
		"topic=" + strings.Repeat("t", 300), strings.Repeat("topic=t&", 200), "user=%zz", "tenant=%C0%80",
		"user=4f1c2a8e-0d7b-4c55-9a53-2f1e7f0c9b11&user=4f1c2a8e-0d7b-4c55-9a53-2f1e7f0c9b12",
	} {
		f.Add(seed, "")
		f.Add(seed, "1-1")
	}
	f.Add("", strings.Repeat("9", 2000))
	f.Add("", "x\ny")
	b, err := core.New(core.Config{Authenticator: core.InsecureQueryAuthenticator()})
	require.NoError(f, err)
	f.Cleanup(func() { _ = b.Close(context.Background()) })
	h, err := newHub(b, hubConfig{takeover: true})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, rawQuery, lastEventID string) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // the client is gone: Serve must return at once
		req := httptest.NewRequest(http.MethodGet, "/events", nil).WithContext(ctx)
		req.URL.RawQuery = rawQuery
		if lastEventID != "" {
			req.Header["Last-Event-Id"] = []string{lastEventID}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		ct := rec.Header().Get("Content-Type")
		if rec.Code == http.StatusOK {
			require.True(t, strings.HasPrefix(ct, "text/event-stream"), "200 that is not a stream: %q %q", ct, rec.Body.String())
		} else {
			require.False(t, strings.HasPrefix(ct, "text/event-stream"), "refusal %d sent as a stream", rec.Code)
		}
		require.Less(t, rec.Code, 500, "status %d: %s", rec.Code, rec.Body.String())
		n := b.Stats().Connections
		require.Equal(t, 0, n, "%d connections still registered after the request ended", n)
	})
}
