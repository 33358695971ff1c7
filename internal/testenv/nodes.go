package testenv

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// kwokAnnotation marks the nodes kwok manages.
const kwokAnnotation = "kwok.x-k8s.io/node"

var metav1GetOptions = metav1.GetOptions{}

// NodeSpec describes a fake node.
type NodeSpec struct {
	Name      string
	Labels    map[string]string
	Addresses []corev1.NodeAddress
	Taints    []corev1.Taint
}

// AddNode creates a kwok-managed node: kwok makes it Ready and runs the
// pods scheduled to it.
func (e *Env) AddNode(ctx context.Context, n NodeSpec) error {
	labels := map[string]string{
		"kubernetes.io/hostname": n.Name,
		"kubernetes.io/os":       "linux",
		"kubernetes.io/arch":     "amd64",
		"type":                   "kwok",
	}
	for k, v := range n.Labels {
		labels[k] = v
	}
	// kwok keeps the addresses a node was created with but replaces a
	// list that lacks a Hostname address; give it one so the test's
	// addresses survive.
	addrs := append([]corev1.NodeAddress(nil), n.Addresses...)
	if len(addrs) > 0 && !hasAddressType(addrs, corev1.NodeHostName) {
		addrs = append(addrs, corev1.NodeAddress{Type: corev1.NodeHostName, Address: n.Name})
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        n.Name,
			Labels:      labels,
			Annotations: map[string]string{kwokAnnotation: "fake", "node.alpha.kubernetes.io/ttl": "0"},
		},
		Spec:   corev1.NodeSpec{Taints: n.Taints},
		Status: corev1.NodeStatus{Addresses: addrs},
	}
	if _, err := e.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create node %s: %w", n.Name, err)
	}
	return nil
}

// DeleteNode deletes a node.
func (e *Env) DeleteNode(ctx context.Context, name string) error {
	err := e.Client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// WaitNodesReady waits (with a watch) until the named nodes are Ready.
func (e *Env) WaitNodesReady(ctx context.Context, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	ready := map[string]bool{}
	lw := cache.NewListWatchFromClient(e.Client.CoreV1().RESTClient(), "nodes", "", fields.Everything())
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Node{}, nil, func(ev watch.Event) (bool, error) {
		node, ok := ev.Object.(*corev1.Node)
		if !ok || !want[node.Name] {
			return false, nil
		}
		ready[node.Name] = false
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready[node.Name] = true
			}
		}
		for n := range want {
			if !ready[n] {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		var notReady []string
		for n := range want {
			if !ready[n] {
				notReady = append(notReady, n)
			}
		}
		return fmt.Errorf("nodes not Ready (%s): %w", strings.Join(notReady, ", "), err)
	}
	return nil
}

// Namespace creates a namespace for one test, deleted when it ends.
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	// Any character a namespace name cannot hold (subtest names have
	// spaces, commas, ...) becomes "-".
	name := "t-" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.TrimRight(name, "-") + "-" + rand.String(5)
	ctx := context.Background()
	if _, err := e.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = e.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

func hasAddressType(addrs []corev1.NodeAddress, t corev1.NodeAddressType) bool {
	for _, a := range addrs {
		if a.Type == t {
			return true
		}
	}
	return false
}
