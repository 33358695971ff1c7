package heketi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"syscall"
	"time"

	jwt "github.com/form3tech-oss/jwt-go"
	"github.com/heketi/heketi/client/api/go-client"
)

// performer is the http layer handed to one upstream client for one call.
// It binds requests to the call's context, retries transient failures and
// polls pending operations adaptively.
type performer struct {
	ctx        context.Context
	c          *Client
	redirect   client.CheckRedirectFunc
	lastStatus int
}

func (p *performer) Do(req *http.Request) (*http.Response, error) {
	hc := *p.c.http
	hc.CheckRedirect = p.redirect
	req = req.WithContext(p.ctx)

	poll := p.c.cfg.PollMin
	retry := p.c.cfg.RetryMin
	attempts := 0
	for sent := 0; ; sent++ {
		if sent > 0 {
			if req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				req.Body = body
			}
			// The upstream client signed the request once; a JWT lives
			// five minutes, so a long poll needs fresh ones.
			if err := p.sign(req); err != nil {
				return nil, err
			}
		}
		resp, err := hc.Do(req)
		if err == nil {
			p.lastStatus = 0
			if resp.StatusCode >= 400 {
				p.lastStatus = resp.StatusCode
			}
		}
		switch {
		case err != nil:
			if !retryableNetErr(err) || attempts >= p.c.cfg.Retries || p.c.cfg.Retries < 0 {
				return nil, err
			}
		case resp.StatusCode == http.StatusOK && resp.Header.Get("X-Pending") == "true":
			// The operation is still running: wait and ask again. This is
			// not a retry, so it does not count against Retries; the
			// call's deadline bounds it.
			drain(resp)
			if err := sleep(p.ctx, poll); err != nil {
				return nil, err
			}
			poll = min(poll*3/2+time.Millisecond, p.c.cfg.PollMax)
			continue
		case retryableResponse(req.Method, resp.StatusCode) && attempts < p.c.cfg.Retries && p.c.cfg.Retries >= 0:
			wait := retry
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && ra > 0 {
				wait = min(time.Duration(ra)*time.Second, p.c.cfg.RetryMax)
			}
			drain(resp)
			attempts++
			if err := sleep(p.ctx, jitter(wait)); err != nil {
				return nil, err
			}
			retry = min(retry*2, p.c.cfg.RetryMax)
			continue
		default:
			return resp, nil
		}
		attempts++
		if err := sleep(p.ctx, jitter(retry)); err != nil {
			return nil, err
		}
		retry = min(retry*2, p.c.cfg.RetryMax)
	}
}

// retryableResponse reports answers worth sending the request again for:
// 429 and 503 mean heketi did not take the request; 502 and 504 come from a
// proxy that may have passed it on, so only reads are retried on them (a
// repeated device add would set the device up twice).
func retryableResponse(method string, code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return true
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return method == http.MethodGet || method == http.MethodHead
	}
	return false
}

// sign replaces the request's JWT with a fresh one, as the upstream client
// makes them (HS256; iss, iat, exp in 5 minutes, qsh = sha256 of
// "METHOD&path").
func (p *performer) sign(req *http.Request) error {
	if p.c.cfg.Key == "" && p.c.cfg.User == "" {
		return nil
	}
	qsh := sha256.Sum256([]byte(req.Method + "&" + req.URL.Path))
	now := time.Now()
	token := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": p.c.cfg.User,
		"iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(),
		"qsh": hex.EncodeToString(qsh[:]),
	})
	signed, err := token.SignedString([]byte(p.c.cfg.Key))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "bearer "+signed)
	return nil
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryableNetErr reports failures where the request never reached heketi,
// so that sending it again cannot do an operation twice.
func retryableNetErr(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
