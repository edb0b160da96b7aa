package users

import (
	"strings"
	"testing"

	"github.com/runyard/runyard/internal/apperr"
)

func TestPassword_HashAndCheck(t *testing.T) {
	const pw = "correct horse battery"
	h, err := HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h, pw) || !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q", h)
	}
	h2, _ := HashPassword(pw)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for _, tc := range []struct {
		name, hash, pw string
		want           bool
	}{
		{"Right", h, pw, true},
		{"Wrong", h, pw + "x", false},
		{"Empty", h, "", false},
		{"Malformed", "$argon2id$v=19$m=x$a$b", pw, false},
		{"OtherAlgorithm", strings.Replace(h, "argon2id", "argon2i", 1), pw, false},
		{"NoHash", "", pw, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CheckPassword(tc.hash, tc.pw); got != tc.want {
				t.Errorf("CheckPassword = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPassword_Validate(t *testing.T) {
	for _, tc := range []struct {
		pw string
		ok bool
	}{
		{strings.Repeat("a", MinPasswordLength), true},
		{strings.Repeat("a", MinPasswordLength-1), false},
		{strings.Repeat("a", MaxPasswordLength+1), false},
	} {
		err := ValidatePassword("password", tc.pw)
		if tc.ok != (err == nil) {
			t.Errorf("ValidatePassword(len %d) = %v", len(tc.pw), err)
		}
		if err != nil && (apperr.CodeOf(err) != apperr.CodeInvalid || strings.Contains(err.Error(), tc.pw)) {
			t.Errorf("error %v: want invalid_argument without the password", err)
		}
	}
}
