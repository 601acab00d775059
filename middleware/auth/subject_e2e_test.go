//go:build !js && !wasip1

// Native only, like attack_test.go, whose HTTP server helpers these use.

package auth_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/auth"
)

// End to end through the net/http adapter and real HTTP requests: one
// stream per provider-shaped token, then one push per subject addressed
// with core.UserFromSubject (or the UUID, where the mapping keeps it).
// Each stream must receive its own push and no other.
func TestSubjectEndToEnd(t *testing.T) {
	ctx := context.Background()
	for _, m := range []auth.SubjectMapping{auth.MapAllSubjects, auth.MapNonUUIDSubjects} {
		t.Run(m.String(), func(t *testing.T) {
			s := startServer(t, subjectConfig(m))
			acme := s.broker.Tenant("acme")
			decoders := map[string]*core.Decoder{}
			for _, sub := range providerSubjects {
				decoders[sub] = s.stream(t, conn{bearer: rsaToken(t, map[string]any{"sub": sub})})
			}
			for _, sub := range providerSubjects {
				user, _ := wantUser(m, sub)
				require.True(t, acme.IsUserOnline(user), "%s is online as %s", sub, user)
				require.NoError(t, acme.SendToUser(ctx, user, "for", sub))
			}
			if m == auth.MapAllSubjects {
				// The UUID subject was mapped too: its raw UUID is nobody.
				require.False(t, acme.IsUserOnline(alice))
				require.NoError(t, acme.SendToUser(ctx, alice, "for", "raw "+subUUID))
			}
			require.NoError(t, acme.Broadcast(ctx, "end", ""))
			for _, sub := range providerSubjects {
				var got []string
				for _, ev := range readUntil(t, decoders[sub], "end") {
					if ev.Type == "for" {
						got = append(got, ev.Data)
					}
				}
				assert.Equal(t, []string{sub}, got, "the stream of %q", sub)
			}
		})
	}
}

// Without a mapping, a provider-shaped token is refused at the door with
// 401, and the logged error says how to accept it.
func TestSubjectUnmappedRefused(t *testing.T) {
	s := startServer(t, testConfig())
	s.refused(t, conn{bearer: rsaToken(t, map[string]any{"sub": subAuth0})}, http.StatusUnauthorized, auth.ErrInvalidClaims)
	err := s.lastReject()
	assert.ErrorContains(t, err, "Config.Subjects")
}
