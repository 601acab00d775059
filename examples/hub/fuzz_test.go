package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

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
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = b.Close(context.Background()) })
	h, err := newHub(b, hubConfig{maxEventSize: 1024, maxBatch: 4})
	if err != nil {
		f.Fatal(err)
	}
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
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("answer %d is not JSON: %q", rec.Code, rec.Body.String())
		}
		switch rec.Code {
		case http.StatusOK:
			if !json.Valid([]byte(body)) {
				t.Fatalf("accepted invalid JSON %q", body)
			}
			ids := answer.IDs
			if answer.ID != "" {
				ids = append(ids, answer.ID)
			}
			if len(ids) == 0 || uint64(len(ids)) != published {
				t.Fatalf("answered %d IDs, published %d events: %s", len(ids), published, rec.Body.String())
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if answer.Error == "" {
				t.Fatalf("%d without an error: %s", rec.Code, rec.Body.String())
			}
			if published != 0 {
				t.Fatalf("a refused body (%d) published %d events", rec.Code, published)
			}
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.String())
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
	if err != nil {
		f.Fatal(err)
	}
	b, err := core.New(o.broker)
	if err != nil {
		f.Fatal(err)
	}
	h, err := newHub(b, o.hub)
	if err != nil {
		f.Fatal(err)
	}
	srv := httptest.NewServer(h)
	f.Cleanup(func() { _ = b.Close(context.Background()); srv.Close() })
	mint := func(g auth.Grant, admin bool) string {
		minter := o.hub.jwt.Mint
		if admin {
			minter = o.hub.jwt.MintAdmin
		}
		tok, err := minter(secret, g)
		if err != nil {
			f.Fatal(err)
		}
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
			f.Fatalf("stream of %s: %v %v", g.Tenant, res, err)
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
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("answer %d is not JSON: %q", rec.Code, rec.Body.String())
			}
			return rec
		}
		if rec := get(""); rec.Code != http.StatusUnauthorized || strings.Contains(rec.Body.String(), "-") {
			t.Fatalf("no credentials: %d %s", rec.Code, rec.Body.String())
		}

		// What the hub reads: the first tenant value, the token's tenant
		// when there is none.
		want := "acme"
		if vs, ok := (url.Values(parseQuery(rawQuery)))["tenant"]; ok && len(vs) > 0 {
			want = vs[0]
		}
		rec := get(member)
		switch {
		case strings.Contains(rec.Body.String(), carol.String()):
			t.Fatalf("a member of acme saw globex's user: %s", rec.Body.String())
		case rec.Code == http.StatusOK && want != "acme":
			t.Fatalf("a member of acme listed tenant %q: %s", want, rec.Body.String())
		case rec.Code == http.StatusOK && !strings.Contains(rec.Body.String(), alice.String()):
			t.Fatalf("a member of acme did not see acme's user: %s", rec.Body.String())
		case rec.Code != http.StatusOK && rec.Code != http.StatusForbidden:
			t.Fatalf("member: status %d: %s", rec.Code, rec.Body.String())
		}

		rec = get(admin)
		if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest {
			t.Fatalf("admin: status %d: %s", rec.Code, rec.Body.String())
		}
		if rec.Code == http.StatusOK {
			var users []string
			if err := json.Unmarshal(rec.Body.Bytes(), &users); err != nil {
				t.Fatalf("admin: not a list: %s", rec.Body.String())
			}
			if core.ValidateTenant(want) != nil {
				t.Fatalf("admin: listed invalid tenant %q", want)
			}
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
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = b.Close(context.Background()) })
	h, err := newHub(b, hubConfig{takeover: true})
	if err != nil {
		f.Fatal(err)
	}
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
		switch {
		case rec.Code == http.StatusOK && !strings.HasPrefix(ct, "text/event-stream"):
			t.Fatalf("200 that is not a stream: %q %q", ct, rec.Body.String())
		case rec.Code != http.StatusOK && strings.HasPrefix(ct, "text/event-stream"):
			t.Fatalf("refusal %d sent as a stream", rec.Code)
		case rec.Code >= 500:
			t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
		if n := b.Stats().Connections; n != 0 {
			t.Fatalf("%d connections still registered after the request ended", n)
		}
	})
}
