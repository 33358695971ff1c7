package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kube is a running control plane: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok.
type kube struct {
	dir        string
	kubeconfig string
	config     *rest.Config
	client     kubernetes.Interface
	procs      []*process // in start order
	apiPort    int        // kube-apiserver's port on 127.0.0.1
	pki        *pki
	egress     *egressProxy
}

func startKube(ctx context.Context, dir string) (_ *kube, err error) {
	k := &kube{dir: filepath.Join(dir, "kube")}
	defer func() {
		if err != nil {
			k.stop()
		}
	}()
	if err := os.MkdirAll(k.dir, 0o755); err != nil {
		return nil, err
	}
	// Build (or find) every binary first, side by side.
	bins := map[string]string{}
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kwok-stages"} {
		p, err := Binary(ctx, name)
		if err != nil {
			return nil, err
		}
		bins[name] = p
	}
	pki, err := newPKI(k.dir)
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	k.pki = pki
	if k.egress, err = startEgressProxy(filepath.Join(k.dir, "egress.sock")); err != nil {
		return nil, err
	}
	egressConfig := filepath.Join(k.dir, "egress-selector.yaml")
	if err := os.WriteFile(egressConfig, fmt.Appendf(nil, egressSelectorConfig, filepath.Join(k.dir, "egress.sock")), 0o644); err != nil {
		return nil, err
	}
	ports := map[string]int{}
	for _, n := range []string{"etcd", "etcd-peer", "apiserver", "cm", "scheduler", "kwok"} {
		if ports[n], err = freePort(); err != nil {
			return nil, err
		}
	}

	// etcd
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports["etcd"])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports["etcd-peer"])
	etcd, err := startProcess("etcd", k.dir, bins["etcd"], []string{
		"--name=testenv",
		"--data-dir=" + filepath.Join(k.dir, "etcd"),
		"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=testenv=" + peerURL,
		"--log-level=warn",
	}, nil)
	if err != nil {
		return nil, err
	}
	k.procs = append(k.procs, etcd)

	// kube-apiserver
	k.apiPort = ports["apiserver"]
	apiURL := fmt.Sprintf("https://127.0.0.1:%d", ports["apiserver"])
	api, err := startProcess("kube-apiserver", k.dir, bins["kube-apiserver"], []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", ports["apiserver"]),
		"--cert-dir=" + filepath.Join(k.dir, "apiserver-certs"),
		"--tls-cert-file=" + pki.servingCert, "--tls-private-key-file=" + pki.servingKey,
		"--client-ca-file=" + pki.caCert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pki.saPub,
		"--service-account-signing-key-file=" + pki.saKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		// Node authorization and NodeRestriction, as in a production
		// cluster: a real node's kubelet acts as system:node:<name>.
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--kubelet-client-certificate=" + pki.kubeletClientCert,
		"--kubelet-client-key=" + pki.kubeletClientKey,
		"--egress-selector-config-file=" + egressConfig,
		// kubeadm's order: a node's address, not its name. The node
		// proxy (/api/v1/nodes/NAME/proxy/..., e.g. the kubelet's
		// /stats/summary) resolves the name in the API server itself,
		// before the egress proxy, and a real node's name resolves
		// nowhere ("lookup real-node-1 ...: no such host"); its address
		// is routed by the egress proxy (egress.go).
		"--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
		"--allow-privileged=true",
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false",
		"--v=0",
	}, nil)
	if err != nil {
		return nil, err
	}
	k.procs = append(k.procs, api)

	k.config = &rest.Config{
		Host:            apiURL,
		TLSClientConfig: rest.TLSClientConfig{CAData: pki.caPEM, CertData: pki.adminCertPEM, KeyData: pki.adminKeyPEM},
		QPS:             200,
		Burst:           400,
		UserAgent:       "glusterkube-testenv",
	}
	if k.client, err = kubernetes.NewForConfig(k.config); err != nil {
		return nil, err
	}
	k.kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(k.kubeconfig, apiURL, pki.caPEM, pki.adminCertPEM, pki.adminKeyPEM); err != nil {
		return nil, err
	}
	waitCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := waitFor(waitCtx, api, "ready", func(ctx context.Context) error {
		body, err := k.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(body)))
		}
		return nil
	}); err != nil {
		return nil, err
	}

	cm, err := startProcess("kube-controller-manager", k.dir, bins["kube-controller-manager"], []string{
		"--kubeconfig=" + k.kubeconfig,
		"--authentication-kubeconfig=" + k.kubeconfig,
		"--authorization-kubeconfig=" + k.kubeconfig,
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", ports["cm"]),
		"--service-account-private-key-file=" + pki.saKey,
		"--root-ca-file=" + pki.caCert,
		"--cluster-signing-cert-file=" + pki.caCert, "--cluster-signing-key-file=" + pki.caKey,
		"--use-service-account-credentials=false",
		"--leader-elect=false",
		"--controllers=*",
		"--concurrent-statefulset-syncs=10",
		// The PV controller and the StatefulSet controller create hundreds
		// of objects in the provisioner benchmark; the default client QPS
		// (20) would measure the controller-manager, not glusterkube.
		"--kube-api-qps=300", "--kube-api-burst=600",
		"--v=0",
	}, nil)
	if err != nil {
		return nil, err
	}
	k.procs = append(k.procs, cm)

	sched, err := startProcess("kube-scheduler", k.dir, bins["kube-scheduler"], []string{
		"--kubeconfig=" + k.kubeconfig,
		"--authentication-kubeconfig=" + k.kubeconfig,
		"--authorization-kubeconfig=" + k.kubeconfig,
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", ports["scheduler"]),
		"--leader-elect=false",
		"--v=0",
	}, nil)
	if err != nil {
		return nil, err
	}
	k.procs = append(k.procs, sched)

	stageFiles, err := filepath.Glob(filepath.Join(bins["kwok-stages"], "*.yaml"))
	if err != nil || len(stageFiles) == 0 {
		return nil, fmt.Errorf("kwok stage files missing in %s", bins["kwok-stages"])
	}
	kwok, err := startProcess("kwok", k.dir, bins["kwok"], []string{
		"--kubeconfig=" + k.kubeconfig,
		"--config=" + strings.Join(stageFiles, ","),
		"--manage-nodes-with-annotation-selector=" + kwokAnnotation + "=fake",
		"--node-lease-duration-seconds=40",
		"--cidr=10.244.0.0/16",
		"--node-ip=127.0.0.1",
		fmt.Sprintf("--server-address=127.0.0.1:%d", ports["kwok"]),
	}, []string{"HOME=" + k.dir})
	if err != nil {
		return nil, err
	}
	k.procs = append(k.procs, kwok)

	// The controller-manager is ready when it has created the default
	// ServiceAccount (pods need it); the scheduler when it answers healthz.
	if err := waitFor(waitCtx, cm, "ready", func(ctx context.Context) error {
		_, err := k.client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1GetOptions)
		return err
	}); err != nil {
		return nil, err
	}
	for _, p := range k.procs {
		if p.exited() {
			return nil, p.failure("exited during start")
		}
	}
	return k, nil
}

func writeKubeconfig(path, server string, caPEM, certPEM, keyPEM []byte) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["testenv"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["user"] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts["testenv"] = &clientcmdapi.Context{Cluster: "testenv", AuthInfo: "user"}
	cfg.CurrentContext = "testenv"
	return clientcmd.WriteToFile(*cfg, path)
}

func (k *kube) stop() {
	// Reverse order: kwok and controllers first, etcd last.
	for i := len(k.procs) - 1; i >= 0; i-- {
		k.procs[i].stop(5 * time.Second)
	}
	if k.egress != nil {
		k.egress.close()
	}
}

// ServiceAccountKubeconfig writes a copy of the environment's kubeconfig
// that acts as ServiceAccount namespace/name, with the groups the API
// server gives a ServiceAccount's token: what a pod running as it sees.
func (e *Env) ServiceAccountKubeconfig(t testing.TB, namespace, name string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(e.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, ai := range cfg.AuthInfos {
		ai.Impersonate = "system:serviceaccount:" + namespace + ":" + name
		ai.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}
