package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/toolbus/toolbus/catalog"
)

// runCatalogShow prints the catalog as loaded: defaults filled in, secrets
// as their ${env:…}/${file:…} references (catalog.Secret never prints its
// value), API keys as their hashes. It is safe to paste into a ticket.
func runCatalogShow(path string, stdout, stderr io.Writer) error {
	cat, err := catalog.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return fmt.Errorf("catalog %s is invalid", path)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(showCatalog(cat))
}

type shownCatalog struct {
	File      string          `json:"file"`
	Digest    string          `json:"digest"`
	Auth      *shownAuth      `json:"auth,omitempty"`
	Upstreams []shownUpstream `json:"upstreams"`
	Tools     []shownTool     `json:"tools"`
	Sources   []shownSource   `json:"sources,omitempty"`
}

type shownAuth struct {
	None                 bool             `json:"none,omitempty"`
	Resource             string           `json:"resource,omitempty"`
	OAuth                *shownOAuth      `json:"oauth,omitempty"`
	APIKeys              []shownAPIKey    `json:"api_keys,omitempty"`
	DefaultScopes        map[string]any   `json:"default_scopes,omitempty"`
	FilterToolsList      bool             `json:"filter_tools_list"`
	CORSAllowedOrigins   []string         `json:"cors_allowed_origins,omitempty"`
	IntrospectionSecrets []catalog.Secret `json:"introspection_credentials,omitempty"`
}

type shownOAuth struct {
	Issuer               string   `json:"issuer"`
	AuthorizationServers []string `json:"authorization_servers"`
	JWKSURL              string   `json:"jwks_url,omitempty"`
	Audiences            []string `json:"audiences"`
	Algorithms           []string `json:"algorithms"`
	ClockSkew            string   `json:"clock_skew"`
	TenantClaim          string   `json:"tenant_claim,omitempty"`
	IntrospectionURL     string   `json:"introspection_url,omitempty"`
}

type shownAPIKey struct {
	Name    string   `json:"name"`
	SHA256  string   `json:"sha256"`
	Subject string   `json:"subject"`
	Tenant  string   `json:"tenant,omitempty"`
	Scopes  []string `json:"scopes"`
}

type shownUpstream struct {
	Name             string           `json:"name"`
	Kind             catalog.Kind     `json:"kind"`
	BaseURL          string           `json:"base_url"`
	Timeout          string           `json:"timeout"`
	Concurrency      int              `json:"concurrency"`
	MaxResponseBytes int64            `json:"max_response_bytes"`
	Headers          []catalog.Header `json:"headers,omitempty"`
	Auth             *shownUpAuth     `json:"auth,omitempty"`
}

type shownUpAuth struct {
	Type               catalog.AuthType `json:"type"`
	In                 string           `json:"in,omitempty"`
	Name               string           `json:"name,omitempty"`
	Value              *catalog.Secret  `json:"value,omitempty"`
	Username           *catalog.Secret  `json:"username,omitempty"`
	Password           *catalog.Secret  `json:"password,omitempty"`
	TokenURL           string           `json:"token_url,omitempty"`
	ClientID           *catalog.Secret  `json:"client_id,omitempty"`
	ClientSecret       *catalog.Secret  `json:"client_secret,omitempty"`
	RefreshToken       *catalog.Secret  `json:"refresh_token,omitempty"`
	Scopes             []string         `json:"scopes,omitempty"`
	Audience           string           `json:"audience,omitempty"`
	Resource           string           `json:"resource,omitempty"`
	SubjectTokenType   string           `json:"subject_token_type,omitempty"`
	RequestedTokenType string           `json:"requested_token_type,omitempty"`
}

type shownTool struct {
	Name     string   `json:"name"`
	Upstream string   `json:"upstream"`
	Method   string   `json:"method,omitempty"`
	Path     string   `json:"path,omitempty"`
	ReadOnly bool     `json:"read_only"`
	Timeout  string   `json:"timeout"`
	Scopes   []string `json:"scopes,omitempty"`
}

type shownSource struct {
	Name    string           `json:"name"`
	Scheme  string           `json:"scheme"`
	Secrets []catalog.Secret `json:"secrets"`
}

func secretPtr(s catalog.Secret) *catalog.Secret {
	if s == (catalog.Secret{}) {
		return nil
	}
	return &s
}

func showCatalog(cat *catalog.Catalog) shownCatalog {
	out := shownCatalog{File: cat.File, Digest: cat.Digest, Upstreams: []shownUpstream{}, Tools: []shownTool{}}
	names := make([]string, 0, len(cat.Upstreams))
	for n := range cat.Upstreams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		u := cat.Upstreams[n]
		su := shownUpstream{Name: u.Name, Kind: u.Kind, Timeout: u.Timeout.String(), Concurrency: u.Concurrency, MaxResponseBytes: u.MaxResponseBytes, Headers: u.Headers}
		if u.BaseURL != nil {
			su.BaseURL = u.BaseURL.String()
		}
		if a := u.Auth; a != nil {
			sa := &shownUpAuth{Type: a.Type, In: a.In, Name: a.Name, Value: secretPtr(a.Value), Username: secretPtr(a.Username), Password: secretPtr(a.Password),
				ClientID: secretPtr(a.ClientID), ClientSecret: secretPtr(a.ClientSecret), RefreshToken: secretPtr(a.RefreshToken),
				Scopes: a.Scopes, Audience: a.Audience, Resource: a.Resource, SubjectTokenType: a.SubjectTokenType, RequestedTokenType: a.RequestedTokenType}
			if a.TokenURL != nil {
				sa.TokenURL = a.TokenURL.String()
			}
			su.Auth = sa
		}
		out.Upstreams = append(out.Upstreams, su)
	}
	for _, t := range cat.Tools {
		st := shownTool{Name: t.Name, Method: t.Method, Path: t.Path, Timeout: t.CallTimeout().String(),
			ReadOnly: t.Annotations.ReadOnly != nil && *t.Annotations.ReadOnly}
		if t.Upstream != nil {
			st.Upstream = t.Upstream.Name
		}
		if cat.Auth.Enabled() {
			st.Scopes = cat.Auth.ToolScopes(t)
		}
		out.Tools = append(out.Tools, st)
	}
	srcNames := make([]string, 0, len(cat.Sources))
	for n := range cat.Sources {
		srcNames = append(srcNames, n)
	}
	sort.Strings(srcNames)
	for _, n := range srcNames {
		s := cat.Sources[n]
		out.Sources = append(out.Sources, shownSource{Name: s.Name, Scheme: s.Scheme, Secrets: s.Secrets})
	}
	if a := cat.Auth; a != nil {
		sa := &shownAuth{None: a.None, Resource: a.Resource, FilterToolsList: a.FilterToolsList, CORSAllowedOrigins: a.CORS.AllowedOrigins}
		if !a.None {
			sa.DefaultScopes = map[string]any{"read_only": a.DefaultScopes.ReadOnly, "write": a.DefaultScopes.Write}
		}
		if o := a.OAuth; o != nil {
			so := &shownOAuth{Issuer: o.Issuer, AuthorizationServers: o.AuthorizationServers, JWKSURL: o.JWKSURL, Audiences: o.Audiences,
				Algorithms: o.Algorithms, ClockSkew: o.ClockSkew.String(), TenantClaim: o.TenantClaim}
			if o.Introspection != nil {
				so.IntrospectionURL = o.Introspection.URL
				sa.IntrospectionSecrets = []catalog.Secret{o.Introspection.ClientID, o.Introspection.ClientSecret}
			}
			sa.OAuth = so
		}
		for _, k := range a.APIKeys {
			sa.APIKeys = append(sa.APIKeys, shownAPIKey{Name: k.Name, SHA256: hex.EncodeToString(k.SHA256[:]), Subject: k.Subject, Tenant: k.Tenant, Scopes: k.Scopes})
		}
		out.Auth = sa
	}
	return out
}
