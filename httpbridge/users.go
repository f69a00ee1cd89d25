package httpbridge

import (
	"encoding/json"
	"errors"
	"net/http"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// userView is a user as the admin routes show it: the password hash never leaves the server.
type userView struct {
	ID           string   `json:"id"`
	Username     string   `json:"username"`
	Password     string   `json:"password"`
	TenantID     string   `json:"tenant_id"`
	CollectionID string   `json:"collection_id"`
	Roles        []string `json:"roles"`
	Revoked      bool     `json:"revoked"`
	CreatedAt    int64    `json:"created_at"`
}

func viewOf(u store.User) userView {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return userView{u.ID, u.Username, "***", u.TenantID, u.CollectionID, roles, u.Revoked, u.CreatedAt}
}

// printable reports whether s is 1-max characters of printable UTF-8.
func printable(s string, max int) bool {
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func checkTenant(t string) error {
	if !printable(t, 128) {
		return errorf(http.StatusBadRequest, "tenant_id must be 1-128 printable characters")
	}
	return nil
}

func checkCollection(c string) error {
	if !printable(c, 128) {
		return errorf(http.StatusBadRequest, "collection_id must be 1-128 printable characters")
	}
	return nil
}

// newUser validates and stores a user; info, if any, becomes its first profile event.
func (s *Server) newUser(username, password, tenant, collection string, roles []string, info json.RawMessage) (store.User, error) {
	switch {
	case !printable(username, 128):
		return store.User{}, errorf(http.StatusBadRequest, "username must be 1-128 printable characters")
	case containsColon(username):
		return store.User{}, errorf(http.StatusBadRequest, "username must not contain ':' (Basic authentication splits on it)")
	case password == "":
		return store.User{}, errorf(http.StatusBadRequest, "password is required")
	case len(password) > 72:
		return store.User{}, errorf(http.StatusBadRequest, "password longer than 72 bytes (the bcrypt limit)")
	}
	if err := checkTenant(tenant); err != nil {
		return store.User{}, err
	}
	if collection == "" {
		collection = newUUID()
	} else if err := checkCollection(collection); err != nil {
		return store.User{}, err
	}
	for _, r := range roles {
		if !printable(r, 128) {
			return store.User{}, errorf(http.StatusBadRequest, "roles must be 1-128 printable characters each")
		}
	}
	if roles == nil {
		roles = []string{}
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cfg.BcryptCost)
	if err != nil {
		return store.User{}, err
	}
	u := store.User{
		ID: newUUID(), Username: username, PasswordHash: hash, TenantID: tenant,
		CollectionID: collection, Roles: roles, CreatedAt: s.clock.Now().Unix(),
	}
	if err := s.acct.CreateUser(u); errors.Is(err, store.ErrUsernameTaken) {
		return store.User{}, errorf(http.StatusConflict, "username %q is taken", username)
	} else if err != nil {
		return store.User{}, storeError(err)
	}
	if len(info) > 0 && string(info) != "null" {
		e := store.Event{
			ID: newUUID(), Event: "user_info", TenantID: tenant, CollectionID: collection,
			UserID: u.ID, Timestamp: u.CreatedAt, Data: info,
		}
		if _, err := s.db.Insert(e, true); err != nil {
			return u, storeError(err)
		}
	}
	return u, nil
}

func containsColon(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return true
		}
	}
	return false
}

// POST /users: sign up (public unless Config.AdminSignupOnly).
func (s *Server) signup(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Username     string          `json:"username"`
		Password     string          `json:"password"`
		TenantID     string          `json:"tenant_id"`
		CollectionID string          `json:"collection_id"`
		Info         json.RawMessage `json:"info"`
		Roles        []string        `json:"roles"`
		AdminToken   string          `json:"admin_token"`
	}
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.TenantID == "" {
		req.TenantID = s.cfg.DefaultTenant // broker 1.x front ends know no tenants
	}
	if s.cfg.AdminSignupOnly || req.Roles != nil {
		// Roles are granted by the admin only; public sign-up gets none.
		if err := s.checkAdmin(req.AdminToken); err != nil {
			if req.Roles != nil && !s.cfg.AdminSignupOnly {
				return errorf(http.StatusForbidden, "roles can be set only with the admin_token")
			}
			return err
		}
	}
	u, err := s.newUser(req.Username, req.Password, req.TenantID, req.CollectionID, req.Roles, req.Info)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": u.ID})
	return nil
}

// POST /create_user: the admin creates a user of tenant tenant_name.
func (s *Server) createUser(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Username   string   `json:"username"`
		Password   string   `json:"password"`
		AdminToken string   `json:"admin_token"`
		TenantName string   `json:"tenant_name"`
		Roles      []string `json:"roles"`
	}
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if err := s.checkAdmin(req.AdminToken); err != nil {
		return err
	}
	u, err := s.newUser(req.Username, req.Password, req.TenantName, "", req.Roles, nil)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": u.ID})
	return nil
}

// POST /login: a JWT for a username and password.
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.Username == "" || req.Password == "" {
		return errorf(http.StatusBadRequest, "username and password are required")
	}
	u, err := s.checkPassword(r, req.Username, req.Password)
	if err != nil {
		return err
	}
	tok, err := s.issueToken(u)
	if err != nil {
		return err
	}
	if r.URL.Query().Get("cookie") == "1" {
		s.setTokenCookie(w, r, tok)
	}
	writeJSON(w, http.StatusOK, map[string]string{"jwt": tok})
	return nil
}

// GET /verify: who the credentials belong to.
func (s *Server) verify(w http.ResponseWriter, r *http.Request) error {
	p, err := s.authenticate(r, false)
	if err != nil {
		return err
	}
	roles := p.user.Roles
	if roles == nil {
		roles = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": p.user.ID, "username": p.user.Username, "tenant_id": p.user.TenantID, "roles": roles, "exp": p.exp,
	})
	return nil
}

type adminRequest struct {
	AdminToken string `json:"admin_token"`
	Username   string `json:"username"`
}

func (s *Server) adminRequest(r *http.Request, needUser bool) (adminRequest, error) {
	var req adminRequest
	if err := decodeBody(r, &req); err != nil {
		return req, err
	}
	if err := s.checkAdmin(req.AdminToken); err != nil {
		return req, err
	}
	if needUser && req.Username == "" {
		return req, errorf(http.StatusBadRequest, "username is required")
	}
	return req, nil
}

// POST /revoke_user, /unrevoke_user. Revocation closes the user's open streams; every later
// request with their token or password is refused, since each request reads the user record.
func (s *Server) revokeUser(revoked bool) route {
	return func(w http.ResponseWriter, r *http.Request) error {
		req, err := s.adminRequest(r, true)
		if err != nil {
			return err
		}
		u, err := s.acct.SetRevoked(req.Username, revoked)
		if errors.Is(err, store.ErrNotFound) {
			return errorf(http.StatusNotFound, "no user %q", req.Username)
		} else if err != nil {
			return storeError(err)
		}
		if revoked {
			s.pw.basic.dropUser(u.ID)
			s.fan.KillUser(u.ID)
		}
		writeJSON(w, http.StatusOK, viewOf(u))
		return nil
	}
}

// POST /list_users.
func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.adminRequest(r, false); err != nil {
		return err
	}
	users, err := s.acct.Users()
	if err != nil {
		return storeError(err)
	}
	out := make([]userView, len(users))
	for i, u := range users {
		out[i] = viewOf(u)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// POST /get_user: the one user named.
func (s *Server) getUser(w http.ResponseWriter, r *http.Request) error {
	req, err := s.adminRequest(r, true)
	if err != nil {
		return err
	}
	u, err := s.acct.UserByName(req.Username)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "no user %q", req.Username)
	} else if err != nil {
		return storeError(err)
	}
	writeJSON(w, http.StatusOK, viewOf(u))
	return nil
}
