"Model-building tests: shapes in both modes, gradients, local/ImageNet weights, the offline error. Small models only."
import copy, json
from urllib.error import URLError

import pytest
import torch
import torchvision

from pssr.io import PssrInputError
from pssr.models import ModelConfig, PSSRNet, adapt_first_conv, build_model, pssr_unet

torch.set_num_threads(1)


@pytest.mark.parametrize('mode', ['lr', 'upsampled'])
@pytest.mark.parametrize('n_frames', [1, 5])
@pytest.mark.parametrize('scale', [2, 4])
def test_output_shape(mode, n_frames, scale):
    "All mode/frames/scale combinations on the light encoder (same DynamicUnet code as the ResNets)."
    check_shape('unet_small', mode, n_frames, scale)


@pytest.mark.parametrize('mode', ['lr', 'upsampled'])
def test_output_shape_resnet18(mode):
    check_shape('resnet18', mode, n_frames=5, scale=4)


def check_shape(arch, mode, n_frames, scale):
    net = pssr_unet(arch, scale=scale, n_frames=n_frames, mode=mode, size=64).eval()
    assert isinstance(net, PSSRNet)
    assert (net.scale, net.n_frames, net.mode, net.arch) == (scale, n_frames, mode, arch)
    lr = 64 // scale
    with torch.no_grad(): out = net(torch.rand(2, n_frames, lr, lr))
    assert out.shape == (2, 1, 64, 64) and type(out) is torch.Tensor
    assert torch.isfinite(out).all()


@pytest.mark.parametrize('mode,size', [('lr', (32, 64)), ('lr', (64, 96)), ('lr', (40, 40)), ('upsampled', (24, 40))])
def test_other_input_sizes(mode, size):
    "Built for 64 px output, the net runs at other sizes (multiples of 32 for 'lr'; others via fastai's resizing)."
    net = pssr_unet('unet_small', scale=4, mode=mode, size=64).eval()
    with torch.no_grad(): out = net(torch.rand(1, 1, *size))
    assert out.shape == (1, 1, 4 * size[0], 4 * size[1])


def test_size_multiple():
    assert pssr_unet('unet_small', scale=4, mode='lr', size=64).size_multiple == 32
    assert pssr_unet('unet_small', scale=4, mode='upsampled', size=64).size_multiple == 8
    assert pssr_unet('unet_small', scale=3, mode='upsampled', size=64).size_multiple == 32


@pytest.mark.parametrize('mode', ['lr', 'upsampled'])
def test_gradient_reaches_every_parameter(mode):
    net = pssr_unet('resnet18', scale=4, n_frames=5, mode=mode, size=64)
    if mode == 'lr':  # the residual head's last conv starts at zero, which blocks gradients until its first update
        last = [c for c in net.head.modules() if isinstance(c, torch.nn.Conv2d)][-1]
        with torch.no_grad(): last.weight.normal_(0, 0.01)
    torch.nn.functional.mse_loss(net(torch.rand(2, 5, 16, 16)), torch.rand(2, 1, 64, 64)).backward()
    first = net.unet.layers[0][0].weight.grad  # the encoder's first conv
    assert first is not None and first.abs().sum() > 0
    no_grad = [n for n, p in net.named_parameters() if p.grad is None]
    assert not no_grad, no_grad[:5]


@pytest.mark.parametrize('mode', ['lr', 'upsampled'])
def test_training_reduces_loss(mode):
    torch.manual_seed(0)
    net = pssr_unet('unet_small', scale=2, mode=mode, size=32)
    x = torch.rand(4, 1, 16, 16)
    y = 0.5 * torch.nn.functional.interpolate(x, scale_factor=2, mode='bilinear') + 0.2  # a learnable target
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    losses = []
    for _ in range(8):
        opt.zero_grad(); loss = torch.nn.functional.mse_loss(net(x), y); loss.backward(); opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses


def test_config_roundtrip_and_state_dict(tmp_path):
    net = pssr_unet('unet_small', scale=4, n_frames=5, size=64)
    cfg = ModelConfig.from_dict(json.loads(json.dumps(net.config.to_dict())))
    assert cfg == net.config and cfg.norm_type == 'weight' and cfg.residual is True
    torch.save(net.state_dict(), tmp_path / 'm.pth')
    net2 = build_model(cfg)
    net2.load_state_dict(torch.load(tmp_path / 'm.pth', weights_only=True))
    x = torch.rand(1, 5, 32, 32)
    net.eval(); net2.eval()
    with torch.no_grad(): assert torch.allclose(net(x), net2(x), atol=1e-6)
    copy.deepcopy(net)  # after a forward pass (fastai's old weight_norm would fail here)


def test_channels_last_same_output():
    torch.manual_seed(0)
    a = pssr_unet('unet_small', scale=4, size=64).eval()
    b = pssr_unet('unet_small', scale=4, size=64, channels_last=True).eval()
    b.load_state_dict(a.state_dict())
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad(): assert torch.allclose(a(x), b(x), atol=1e-5)


def test_bad_arguments():
    with pytest.raises(PssrInputError, match='resnet34'): pssr_unet('vgg', size=64)
    with pytest.raises(PssrInputError, match='lr, upsampled'): pssr_unet('unet_small', mode='hr', size=64)
    with pytest.raises(PssrInputError, match='positive integer'): pssr_unet('unet_small', scale=0, size=64)
    with pytest.raises(PssrInputError, match='no ImageNet weights'): pssr_unet('unet_small', pretrained=True, size=64)
    net = pssr_unet('unet_small', n_frames=5, size=64)
    with pytest.raises(PssrInputError, match='5 frame'): net(torch.rand(1, 1, 32, 32))


@pytest.mark.parametrize('n_frames', [1, 5])
def test_local_weights(tmp_path, n_frames):
    rn = torchvision.models.resnet18()
    torch.save(rn.state_dict(), tmp_path / 'r18.pth')
    net = pssr_unet('resnet18', n_frames=n_frames, weights=tmp_path / 'r18.pth', size=64)
    body = net.unet.layers[0]
    assert torch.equal(body[4][0].conv1.weight, rn.layer1[0].conv1.weight)
    assert torch.equal(body[7][1].bn2.running_var, rn.layer4[1].bn2.running_var)
    assert torch.allclose(body[0].weight, adapt_first_conv(rn.conv1.weight, n_frames))
    assert body[0].weight.shape[1] == n_frames
    # a grey image repeated over the frames gives the RGB network's first-layer response
    g = torch.rand(1, 1, 32, 32)
    assert torch.allclose(body[0](g.repeat(1, n_frames, 1, 1)), rn.conv1(g.repeat(1, 3, 1, 1)), atol=1e-4)
    assert net.config.weights == str(tmp_path / 'r18.pth')


def test_bad_weights_files(tmp_path):
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / 'r18.pth')
    with pytest.raises(PssrInputError, match='resnet34 encoder state dict'):
        pssr_unet('resnet34', weights=tmp_path / 'r18.pth', size=64)
    with pytest.raises(PssrInputError, match='not found'):
        pssr_unet('resnet18', weights=tmp_path / 'missing.pth', size=64)
    (tmp_path / 'junk.pth').write_bytes(b'not a torch file')
    with pytest.raises(PssrInputError, match='cannot read'):
        pssr_unet('resnet18', weights=tmp_path / 'junk.pth', size=64)
    torch.save([1, 2], tmp_path / 'list.pth')
    with pytest.raises(PssrInputError, match='dict of tensors'):
        pssr_unet('resnet18', weights=tmp_path / 'list.pth', size=64)


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    "An empty torch hub cache and a download function that fails as without network."
    def no_network(url, *args, **kwargs): raise URLError('[Errno -3] Temporary failure in name resolution')
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    monkeypatch.setattr(torch.hub, 'download_url_to_file', no_network)
    return tmp_path / 'hub'


def test_pretrained_offline_error(offline_hub):
    with pytest.raises(PssrInputError) as e:
        pssr_unet('resnet18', pretrained=True, size=64)
    msg = str(e.value)
    assert '\n' not in msg and 'no network' in msg and 'weights=' in msg and 'resnet18' in msg


def test_pretrained_uses_hub_cache_offline(offline_hub):
    "With the checkpoint already in torch's cache, pretrained=True works without network."
    rn = torchvision.models.resnet18()
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    (offline_hub / 'checkpoints').mkdir(parents=True)
    torch.save(rn.state_dict(), offline_hub / 'checkpoints' / url.rsplit('/', 1)[1])
    net = pssr_unet('resnet18', pretrained=True, size=64)
    assert torch.equal(net.unet.layers[0][5][0].conv2.weight, rn.layer2[0].conv2.weight)
