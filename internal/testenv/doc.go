// Package testenv runs the real components glusterkube is tested against,
// on 127.0.0.1 and free ports, each in its own temp dir:
//
//   - etcd (Debian's etcd-server), kube-apiserver, kube-controller-manager
//     and kube-scheduler (k8s.io/kubernetes v1.37.2, built from hack/kube),
//   - kwok (hack/kwok) faking kubelets for Nodes and Pods, with the stage
//     files shipped in its module (node fast + heartbeat, pod fast),
//   - heketi with the mock executor (hack/heketi), one fresh DB per server,
//   - glusterd on demand, for tests that mount (testenv.NewGlusterd(t)):
//     Debian's glusterfs-server in network, PID and mount namespaces of its
//     own (see glusterd.go), with directory bricks and FUSE mounts in its
//     temp dir; CreateHeketiVolume makes the volume a heketi volume (mock
//     executor) only records; NetNS, ListenInNetNS and ForwardFromNetNS
//     let processes run in its network namespace and reach the test's
//     servers;
//   - glusterkube itself: a test binary whose TestMain calls
//     RunCommandIfAsked(app.Main) runs as glusterkube when started through
//     Command (a CSI node plugin, a mount service), under StartProcess;
//   - a real node on demand (env.NewRealNode(t)): the kubelet (built from
//     hack/kube) and Debian's containerd, runc and CNI plugins in
//     namespaces of their own, running real pods from images
//     built locally (see realnode.go and images.go; glusterkube_image.go
//     builds the image the CSI DaemonSets of examples/csi run);
//   - a storage node (env.NewStorageNode(t, ...), storagenode.go): a real
//     node with a glusterd and a heketi server of its own whose volumes
//     Wrap/Dial make real on that glusterd, and InstallCSINode (csinode.go)
//     to run examples/csi's DaemonSets on it; intree.go makes what the
//     in-tree provisioner left for a claim.
//
// Binaries are built once into a cache folder keyed by the nested modules'
// go.mod/go.sum and rebuilt only when a pinned version changes.
//
// Integration tests run when GLUSTERKUBE_INTEGRATION=1 (make test sets it).
// Without it they skip with one line saying how to run them. With CI=true an
// environment that cannot start fails the tests instead of skipping them.
//
// Each test package starts one environment in TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m, testenv.Options{Kube: true, Heketi: true})) }
//
// and tests take it with testenv.Get(t), isolating themselves by namespace
// (env.Namespace(t)) and by heketi cluster, or by their own heketi server
// (testenv.NewHeketi(t, ...)).
package testenv
