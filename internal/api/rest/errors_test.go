package rest_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/testutil"
)

// endpoints are the REST paths with a runner of the default organization.
func endpoints(id int64) []string {
	return []string{
		"/runners",
		"/runners/available",
		fmt.Sprintf("/runners/%d", id),
		fmt.Sprintf("/runners/%d/pods", id),
	}
}

// TestRunners_Auth walks every endpoint with every kind of credential.
func TestRunners_Auth(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		adm := newAdmin(ts, testutil.AdminToken)
		n := name("authz")
		_, x := adm.createRunner(t, n)
		id := newAPI(ts, "default", bearer(testutil.AdminToken)).seqOf(t, n)
		_, readKey := adm.createKey(t, "runners:read")
		_, writeKey := adm.createKey(t, "runners:write")
		_, podsKey := adm.createKey(t, "pods:read", "pods:write")
		revokedID, revokedKey := adm.createKey(t, "admin")
		adm.revokeKey(t, revokedID)
		runnerToken := adm.exchange(t, x)

		tests := []struct {
			name, auth string
			status     int
			code       string
		}{
			{"OKAdmin", bearer(testutil.AdminToken), http.StatusOK, ""},
			{"OKUserKey", "UserKey " + testutil.AdminToken, http.StatusOK, ""},
			{"OKLowercaseScheme", "bearer " + readKey, http.StatusOK, ""},
			{"OKReadKey", bearer(readKey), http.StatusOK, ""},
			{"ErrNoToken", "", http.StatusUnauthorized, "unauthenticated"},
			{"ErrUnknownToken", bearer("ryd_ak_not-a-key"), http.StatusUnauthorized, "unauthenticated"},
			{"ErrRevokedKey", bearer(revokedKey), http.StatusUnauthorized, "unauthenticated"},
			{"ErrBasicScheme", "Basic " + testutil.AdminToken, http.StatusUnauthorized, "unauthenticated"},
			{"ErrTokenWithoutScheme", testutil.AdminToken, http.StatusUnauthorized, "unauthenticated"},
			{"ErrExchangeTokenAsBearer", bearer(x), http.StatusUnauthorized, "unauthenticated"},
			{"ErrWriteKey", bearer(writeKey), http.StatusForbidden, "permission_denied"},
			{"ErrPodsKey", bearer(podsKey), http.StatusForbidden, "permission_denied"},
			{"ErrRunnerToken", bearer(runnerToken), http.StatusForbidden, "permission_denied"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				a := newAPI(ts, "default", tt.auth)
				for _, path := range endpoints(id) {
					res := a.get(t, path)
					if tt.status == http.StatusOK {
						res.wantOK(t, nil)
						continue
					}
					res.wantError(t, tt.status, tt.code)
					if tt.status == http.StatusUnauthorized && res.Header.Get("WWW-Authenticate") == "" {
						t.Errorf("%s: 401 without WWW-Authenticate", path)
					}
				}
			})
		}
		t.Run("ErrForbiddenNamesScope", func(t *testing.T) {
			newAPI(ts, "default", bearer(writeKey)).get(t, "/runners").wantError(t, http.StatusForbidden, "permission_denied", "runners:read")
		})
		t.Run("ErrNoTokenWrongOrg", func(t *testing.T) {
			// Authentication comes first: without a token, no organization
			// is found or missed.
			newAPI(ts, "nope", "").get(t, "/runners").wantError(t, http.StatusUnauthorized, "unauthenticated")
		})
	})
}

// TestRunners_BadRequests checks that malformed ids and query parameters
// fail with 400 naming the parameter, and missing runners with 404.
func TestRunners_BadRequests(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		adm := newAdmin(ts, testutil.AdminToken)
		n := name("bad")
		adm.createRunner(t, n)
		a := newAPI(ts, "default", bearer(testutil.AdminToken))
		id := a.seqOf(t, n)
		pods := fmt.Sprintf("/runners/%d/pods", id)
		tests := []struct {
			name, path string
			status     int
			code       string
			mention    []string
		}{
			{"ErrIDNotNumeric", "/runners/abc", 400, "invalid_argument", []string{"id", "abc"}},
			{"ErrIDUUID", "/runners/" + uuid.NewString(), 400, "invalid_argument", []string{"id"}},
			{"ErrIDZero", "/runners/0", 400, "invalid_argument", []string{"id"}},
			{"ErrIDNegative", "/runners/-3", 400, "invalid_argument", []string{"id"}},
			{"ErrIDOverflow", "/runners/99999999999999999999", 400, "invalid_argument", []string{"id"}},
			{"ErrIDFraction", "/runners/1.5", 400, "invalid_argument", []string{"id"}},
			{"ErrPodsIDNotNumeric", "/runners/abc/pods", 400, "invalid_argument", []string{"id"}},
			{"ErrAvailablePods", "/runners/available/pods", 400, "invalid_argument", []string{"id"}},
			{"ErrMissing", fmt.Sprintf("/runners/%d", id+1000), 404, "not_found", []string{fmt.Sprint(id + 1000)}},
			{"ErrPodsOfMissing", fmt.Sprintf("/runners/%d/pods", id+1000), 404, "not_found", []string{fmt.Sprint(id + 1000)}},
			{"ErrLimitZero", pods + "?limit=0", 400, "invalid_argument", []string{"limit"}},
			{"ErrLimitNegative", pods + "?limit=-1", 400, "invalid_argument", []string{"limit"}},
			{"ErrLimitTooLarge", pods + "?limit=101", 400, "invalid_argument", []string{"limit", "100"}},
			{"ErrLimitNotNumeric", pods + "?limit=ten", 400, "invalid_argument", []string{"limit"}},
			{"ErrOffsetNegative", pods + "?offset=-1", 400, "invalid_argument", []string{"offset"}},
			{"ErrOffsetNotNumeric", pods + "?offset=x", 400, "invalid_argument", []string{"offset"}},
			{"ErrStatusUnknown", pods + "?status=sleeping", 400, "invalid_argument", []string{"status", "running"}},
			{"ErrStatusCase", pods + "?status=Running", 400, "invalid_argument", []string{"status"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				a.get(t, tt.path).wantError(t, tt.status, tt.code, tt.mention...)
			})
		}
		t.Run("OKEmptyParameters", func(t *testing.T) {
			got := a.pods(t, id, "?status=&limit=&offset=")
			if got.Limit != 50 || got.Offset != 0 {
				t.Errorf("limit, offset = %d, %d, want the defaults 50, 0", got.Limit, got.Offset)
			}
		})
		t.Run("ErrMethod", func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, a.base+"/runners", nil)
			mustOK(t, err, "new request")
			req.Header.Set("Authorization", a.auth)
			res, err := http.DefaultClient.Do(req)
			mustOK(t, err, "POST /runners")
			res.Body.Close()
			if res.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("POST /runners: status %d, want 405", res.StatusCode)
			}
		})
	})
}

// TestRunners_Organizations checks that {org} must be the caller's
// organization: any other name is 404, whether that organization exists or
// not, and no runner of another organization is ever listed.
func TestRunners_Organizations(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts, st := startServerWithStore(t, backend, 0)
			otherSecret := mustCreateOrgAdmin(t, st, "other")
			ours, theirs := newAdmin(ts, testutil.AdminToken), newAdmin(ts, otherSecret)
			ourName, theirName := name("ours"), name("theirs")
			ours.createRunner(t, ourName)
			theirs.createRunner(t, theirName)
			me := newAPI(ts, "default", bearer(testutil.AdminToken))
			them := newAPI(ts, "other", bearer(otherSecret))
			ourID, theirID := me.seqOf(t, ourName), them.seqOf(t, theirName)

			if got := names(me.runners(t, "/runners")); len(got) != 1 || got[0] != ourName {
				t.Errorf("our runners = %q, want only %q", got, ourName)
			}
			if got := names(them.runners(t, "/runners")); len(got) != 1 || got[0] != theirName {
				t.Errorf("their runners = %q, want only %q", got, theirName)
			}
			// Their runner's id in our organization names nothing.
			me.get(t, fmt.Sprintf("/runners/%d", theirID)).wantError(t, http.StatusNotFound, "not_found")
			me.get(t, fmt.Sprintf("/runners/%d/pods", theirID)).wantError(t, http.StatusNotFound, "not_found")

			for _, c := range []struct {
				name, org, auth string
				id              int64
			}{
				{"WeAskForTheirs", "other", bearer(testutil.AdminToken), ourID},
				{"TheyAskForOurs", "default", bearer(otherSecret), theirID},
				{"NoSuchOrganization", "nope", bearer(testutil.AdminToken), ourID},
				{"OrganizationByID", orgID(t, st), bearer(testutil.AdminToken), ourID},
			} {
				t.Run(c.name, func(t *testing.T) {
					a := newAPI(ts, c.org, c.auth)
					for _, path := range endpoints(c.id) {
						a.get(t, path).wantError(t, http.StatusNotFound, "not_found", c.org)
					}
				})
			}
		})
	}
}

// mustCreateOrgAdmin stores an organization with an admin key, which no API
// creates yet, and returns the key.
func mustCreateOrgAdmin(t *testing.T, st store.Store, orgName string) string {
	t.Helper()
	ctx := context.Background()
	created := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	org := &identity.Organization{ID: uuid.NewString(), Name: orgName, CreatedAt: created}
	mustOK(t, st.CreateOrganization(ctx, org), "store organization")
	secret := identity.NewSecret(identity.PrefixAPIKey)
	id := uuid.NewString()
	mustOK(t, st.CreateToken(ctx, &identity.Token{
		ID: id, OrgID: org.ID, Name: "admin-" + id[:8], Principal: identity.PrincipalServiceAccount,
		Scopes:  []identity.Scope{identity.ScopeAdmin},
		Creator: identity.Subject{ID: id, Principal: identity.PrincipalServiceAccount}, Hash: identity.HashSecret(secret),
		CreatedAt: created,
	}), "store admin key")
	return secret
}
