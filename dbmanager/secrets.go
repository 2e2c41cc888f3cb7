package dbmanager

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"faas/proxies/faas"
)

// SecretKeyFile is the file in its data directory where `faas up` keeps
// the key it generated for secrets.
const SecretKeyFile = "secret.key"

// secretKeyBytes is the length of FAAS_SECRET_KEY once decoded: AES-256.
const secretKeyBytes = 32

// parseSecretKey decodes FAAS_SECRET_KEY. The message never holds the
// value, which is itself a secret.
func parseSecretKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("dbmanager config: FAAS_SECRET_KEY is not base64: want 32 random bytes in base64, e.g. from `openssl rand -base64 32`")
	}
	if len(key) != secretKeyBytes {
		return nil, fmt.Errorf("dbmanager config: FAAS_SECRET_KEY holds %d bytes, want %d (e.g. from `openssl rand -base64 32`)", len(key), secretKeyBytes)
	}
	return key, nil
}

// LoadOrCreateSecretKey returns the key in dir's SecretKeyFile, first
// writing a new random one there (mode 0600) if there is none, so that a
// platform started with `faas up` can store secrets and read them back
// after a restart.
func LoadOrCreateSecretKey(dir string) (string, error) {
	path := filepath.Join(dir, SecretKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read secret key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("create data directory: %w", err)
	}
	raw := make([]byte, secretKeyBytes)
	_, _ = rand.Read(raw)
	key := base64.StdEncoding.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("write secret key: %w", err)
	}
	_, err = f.WriteString(key + "\n")
	if err = errors.Join(err, f.Close()); err != nil {
		return "", fmt.Errorf("write secret key: %w", err)
	}
	return key, nil
}

// sealed is the Store the manager serves: secrets are encrypted with
// AES-GCM before the database sees them and decrypted only in
// FunctionVersion, the worker's call (the backends answer them by name
// everywhere else). Without a key it refuses to store secrets.
type sealed struct {
	store
	aead cipher.AEAD
	// nonceKey derives each nonce from what is sealed, so that sealing
	// the same secret of the same function twice gives the same text and
	// a retried PutFunction is recognised as one (see SameFunction).
	nonceKey []byte
}

// sealedPrefix marks a sealed value and its format.
const sealedPrefix = "v1:"

func newSealed(s store, key []byte) (*sealed, error) {
	if key == nil {
		return &sealed{store: s}, nil
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("faas secret nonce"))
	return &sealed{store: s, aead: aead, nonceKey: mac.Sum(nil)}, nil
}

// additional binds a sealed value to its function and name, so that it
// cannot be moved to another one in the database and decrypt there.
func additional(owner, fn, name string) []byte {
	return []byte(owner + "\x00" + fn + "\x00" + name)
}

func (s *sealed) seal(owner, fn, name, value string) string {
	ad := additional(owner, fn, name)
	mac := hmac.New(sha256.New, s.nonceKey)
	mac.Write(ad)
	mac.Write([]byte{0})
	mac.Write([]byte(value))
	nonce := mac.Sum(nil)[:s.aead.NonceSize()]
	return sealedPrefix + base64.StdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(value), ad))
}

func (s *sealed) open(owner, fn, name, text string) (string, error) {
	undecryptable := faas.Errorf(faas.Internal, "secret %s of function %s cannot be decrypted: was FAAS_SECRET_KEY changed?", name, fn)
	if s.aead == nil {
		return "", faas.Errorf(faas.Internal, "function %s has secrets but the DB manager has no FAAS_SECRET_KEY to decrypt them", fn)
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(text, sealedPrefix))
	if err != nil || !strings.HasPrefix(text, sealedPrefix) || len(b) < s.aead.NonceSize() {
		return "", undecryptable
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, b[:n], b[n:], additional(owner, fn, name))
	if err != nil {
		return "", undecryptable
	}
	return string(plain), nil
}

// PutFunction checks f's env and secrets and seals the secrets.
func (s *sealed) PutFunction(ctx context.Context, f faas.Function) (faas.Function, bool, error) {
	if err := faas.CheckSettings(f.Env, f.Secrets); err != nil {
		return faas.Function{}, false, err
	}
	if len(f.Secrets) > 0 {
		if s.aead == nil {
			return faas.Function{}, false, faas.Errorf(faas.Invalid, "secrets are not enabled on this platform: its DB manager has no FAAS_SECRET_KEY")
		}
		plain := f.Secrets
		f.Secrets = make(map[string]string, len(plain))
		for k, v := range plain {
			f.Secrets[k] = s.seal(f.Owner, f.Name, k, v)
		}
	}
	return s.store.PutFunction(ctx, f)
}

// FunctionVersion answers the version with its secrets decrypted.
func (s *sealed) FunctionVersion(ctx context.Context, owner, name string, version int64) (faas.Function, error) {
	f, err := s.store.FunctionVersion(ctx, owner, name, version)
	if err != nil || len(f.Secrets) == 0 {
		return f, err
	}
	plain := make(map[string]string, len(f.Secrets))
	for k, v := range f.Secrets {
		if plain[k], err = s.open(owner, name, k, v); err != nil {
			return faas.Function{}, err
		}
	}
	f.Secrets = plain
	return f, nil
}
