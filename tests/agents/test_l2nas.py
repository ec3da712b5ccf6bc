"""L²NAS: contract, closed forms (pinball loss, schedules, state), actions, failures, learning."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rlnas.agents import create_agent
from rlnas.agents.base import Proposal
from rlnas.agents.l2nas import L2NASAgent, L2NASConfig
from rlnas.agents.l2nas_parts import (
    Actor,
    Adam,
    BlockSums,
    Critic,
    ReplayBuffer,
    SeenSet,
    TopScale,
    block_matrix,
    block_softmax,
    decayed,
    neighbours_of,
    one_and_two_edits,
    pinball_grad,
    pinball_loss,
)
from rlnas.errors import ConfigError
from rlnas.spaces import create_space
from rlnas.spaces.base import Categorical, Space
from rlnas.study import checkpoint
from rlnas.testing import ToyEvaluator
from rlnas.testing.agent_contract import check_agent_contract, drive, roundtrip_state

torch.set_num_threads(1)

SMALL = {"hidden": 16, "batch": 8, "warmup": 2, "initial_random": 2, "top_n": 4}


def conv_count(candidate) -> float:
    """A deterministic NB201 reward: share of 3x3 convolutions, plus a little for 1x1."""
    ops = list(candidate.values())
    return 60.0 + 5.0 * ops.count("nor_conv_3x3") + 2.0 * ops.count("nor_conv_1x1")


@pytest.mark.parametrize("decisions,choices", [(4, 5), (6, 3), (1, 2)])
def test_contract_on_toy_spaces(decisions: int, choices: int) -> None:
    evaluator = ToyEvaluator(decisions, choices)
    check_agent_contract(lambda space, seed: L2NASAgent(space, SMALL, seed=seed), evaluator.space,
                         evaluator.reward_of, batches=12)


def test_contract_on_nb201_and_registry() -> None:
    space = create_space("nb201")
    check_agent_contract(lambda sp, seed: create_agent("l2nas", sp, SMALL, seed=seed), space, conv_count, batches=12)
    assert isinstance(create_agent("l2nas", space), L2NASAgent)


def test_several_asks_before_tell_and_resume_mid_flight() -> None:
    evaluator = ToyEvaluator(5, 4)
    agents = [L2NASAgent(evaluator.space, SMALL, seed=3) for _ in range(2)]
    for agent in agents:
        drive(agent, evaluator.reward_of, 6)
    pending = [agent.ask(4) for agent in agents]
    assert [p.candidate for p in pending[0]] == [p.candidate for p in pending[1]]
    restored = L2NASAgent(evaluator.space, SMALL, seed=0)
    restored.load_state_dict(roundtrip_state(agents[1]))
    # Tell the pending proposals out of order, then keep going: both continue identically.
    for agent in (agents[0], restored):
        agent.tell([(p, evaluator.reward_of(p.candidate)) for p in reversed(pending[0])])
    assert drive(agents[0], evaluator.reward_of, 6) == drive(restored, evaluator.reward_of, 6)


def test_pinball_loss_and_gradient_closed_form() -> None:
    target = np.array([1.0, 1.0, 1.0, 1.0])
    prediction = np.array([0.0, 2.0, 1.0, -1.0])  # residuals 1, -1, 0, 2
    for tau in (0.1, 0.5, 0.9):
        expected = np.mean([max(tau * r, (tau - 1) * r) for r in (1.0, -1.0, 0.0, 2.0)])
        assert pinball_loss(prediction, target, tau) == pytest.approx(expected)
        assert np.allclose(pinball_grad(prediction, target, tau), np.array([-tau, 1 - tau, 1 - tau, -tau]) / 4)
    assert pinball_loss(np.array([0.0]), np.array([2.0]), 0.9) == pytest.approx(1.8)
    assert pinball_loss(np.array([2.0]), np.array([0.0]), 0.9) == pytest.approx(0.2)


def test_minimising_pinball_loss_with_adam_gives_the_quantile() -> None:
    values = np.arange(1.0, 101.0)  # 1..100: the 0.9-quantile is about 90
    q = np.zeros(1, dtype=np.float32)
    opt = Adam(1, lr=1.0)
    for _ in range(600):
        opt.step(q, np.array([pinball_grad(np.full(100, q[0]), values, 0.9).sum()], dtype=np.float32))
    assert 88.5 <= float(q[0]) <= 91.5


def test_adam_matches_torch() -> None:
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(7).astype(np.float32)
    reference = torch.tensor(theta.copy(), requires_grad=True)
    ours, theirs = Adam(7, lr=0.01), torch.optim.Adam([reference], lr=0.01)
    for _ in range(20):
        grad = rng.standard_normal(7).astype(np.float32)
        ours.step(theta, grad)
        reference.grad = torch.tensor(grad)
        theirs.step()
    assert np.allclose(theta, reference.detach().numpy(), atol=1e-6)


def test_hand_written_gradients_match_autograd() -> None:
    """Actor and critic backward passes against PyTorch's autograd of the same forward pass."""
    rng = np.random.default_rng(0)
    sizes, dim = (3, 2, 4), 9
    actor, critic = Actor(sizes, 7, 4.0, 2.0, rng), Critic(dim, 5, rng)
    assert not actor.net.weights[-2].any()  # an untrained actor's action is the state's block softmax
    actor.net.theta[:] = rng.uniform(-0.5, 0.5, actor.net.theta.shape)
    states = rng.random((6, dim)).astype(np.float32)

    def torch_mlp(net, x):
        # A one-member ensemble (the critic) has a leading member axis; its biases are (1, 1, out).
        weights = [torch.tensor((w[0, 0] if w.ndim == 3 and w.shape[1] == 1 else w[0] if w.ndim == 3 else w).copy(),
                                requires_grad=True) for w in net.weights]
        for i in range(0, len(weights), 2):
            x = x @ weights[i] + weights[i + 1]
            x = torch.relu(x) if i < len(weights) - 2 else x
        return x, weights

    s = torch.tensor(states)
    out, actor_weights = torch_mlp(actor.net, s)
    logits = 4.0 * torch.tanh(out) + 2.0 * s
    action = torch.cat([torch.softmax(block, -1) for block in logits.split(sizes, -1)], -1)
    q, _ = torch_mlp(critic.net, torch.cat([s, action], -1))
    (-q.mean()).backward()
    ours, cache = actor.forward(states)
    assert np.allclose(ours, action.detach().numpy(), atol=1e-6)
    q_ours, inputs = critic.forward(states, ours)
    assert np.allclose(q_ours[0], q.detach().numpy()[:, 0], atol=1e-5)
    grad_action = critic.backward(inputs, np.full((1, 6), -1 / 6), params=False)[0]
    actor.backward(cache, grad_action)
    for mine, reference in zip(actor.net.grads, actor_weights):
        assert np.allclose(mine, reference.grad.numpy(), atol=1e-6)
    assert not critic.net.grad.any()  # params=False leaves the critic's gradient alone

    targets = rng.random(6)
    q, critic_weights = torch_mlp(critic.net, torch.cat([s, torch.tensor(ours)], -1))
    residual = torch.tensor(targets, dtype=torch.float32) - q[:, 0]
    torch.maximum(0.7 * residual, -0.3 * residual).mean().backward()
    critic.learn(inputs, pinball_grad(q_ours, targets, 0.7))  # the agent's critic step
    for mine, reference in zip(critic.net.grads, critic_weights):
        assert np.allclose(mine.reshape(reference.shape), reference.grad.numpy(), atol=1e-6)


def test_critic_ensemble_members_match_autograd_on_their_own_batches() -> None:
    """Each member of a three-member critic is its own network: predictions and gradients against autograd."""
    rng = np.random.default_rng(1)
    dim, members, rows = 4, 3, 5
    critic = Critic(dim, 6, rng, members=members)
    states = rng.random((members, rows, dim)).astype(np.float32)
    actions = rng.random((members, rows, dim)).astype(np.float32)
    targets = rng.random((members, rows))
    q, inputs = critic.forward(states, actions)
    assert q.shape == (members, rows)
    critic.backward(inputs, pinball_grad(q, targets, 0.7) * members)  # the sum of the members' mean losses
    shared_q, _ = critic.forward(states[0], actions[0])  # rows shared by every member
    assert np.allclose(shared_q[0], q[0], atol=1e-6) and not np.allclose(shared_q[1], q[1])
    for m in range(members):
        weights = [torch.tensor(w[m].reshape(w.shape[-2:] if w.shape[1] > 1 else w.shape[-1:]).copy(),
                                requires_grad=True) for w in critic.net.weights]
        x = torch.cat([torch.tensor(states[m]), torch.tensor(actions[m])], -1)
        for i in range(0, len(weights), 2):
            x = x @ weights[i] + weights[i + 1]
            x = torch.relu(x) if i < len(weights) - 2 else x
        assert np.allclose(x.detach().numpy()[:, 0], q[m], atol=1e-5)
        residual = torch.tensor(targets[m], dtype=torch.float32) - x[:, 0]
        torch.maximum(0.7 * residual, -0.3 * residual).mean().backward()
        for mine, reference in zip(critic.net.grads, weights):
            assert np.allclose(mine[m].reshape(reference.shape), reference.grad.numpy(), atol=1e-6)


def test_one_and_two_edit_neighbours() -> None:
    sizes = (3, 2, 4)
    one, two = one_and_two_edits(sizes)
    assert len(one) == 2 + 1 + 3 and len(two) == 2 * 1 + 2 * 3 + 1 * 3  # sum of (k-1), sum over pairs
    row = np.array([[2, 0, 1]])
    for edits, distance in ((one, 1), (two, 2)):
        cells = neighbours_of(row, sizes, edits)
        assert len({tuple(c) for c in cells}) == len(edits)
        assert ((cells != row).sum(axis=1) == distance).all() and (cells < np.array(sizes)).all()
    assert len(neighbours_of(np.array([[0, 0, 0], [1, 1, 1]]), sizes, one)) == 2 * len(one)


def test_neighbour_proposals_are_near_the_top_k() -> None:
    space = create_space("nb201")
    cfg = {**SMALL, "neighbours": 2, "critics": 3, "optimism": 1.0, "epsilon_start": 0.0, "epsilon_end": 0.0}
    agent = L2NASAgent(space, cfg, seed=2)
    sources = []
    for _ in range(60):
        (proposal,) = agent.ask()
        row = np.array(space.indices(proposal.candidate))
        if proposal.info["source"] == "neighbour":
            top = np.array([ix for _, _, ix in agent.top])
            assert (row != top).sum(axis=1).min() == 1 or (row != top[0]).sum() == 2
            assert space.decode(proposal.info["action"]) == proposal.candidate
        sources.append(proposal.info["source"])
        agent.tell([(proposal, conv_count(proposal.candidate))])
    assert "neighbour" in sources and "actor" in sources
    assert len({space.key(space.from_indices(ix)) for _, _, ix in agent.top}) == len(agent.top)


def test_schedules_follow_their_closed_forms() -> None:
    cfg = {"initial_random": 5, "epsilon_start": 0.4, "epsilon_end": 0.05, "epsilon_halflife": 10.0,
           "noise_start": 0.6, "noise_end": 0.2, "noise_halflife": 20.0}
    agent = L2NASAgent(ToyEvaluator().space, cfg, seed=0)
    for step in range(5):
        assert agent.epsilon(step) == 1.0
        assert agent.noise_std(step) == pytest.approx(0.6)
    for step in (5, 15, 25, 105):
        t = step - 5
        assert agent.epsilon(step) == pytest.approx(0.05 + 0.35 * 0.5 ** (t / 10))
        assert agent.noise_std(step) == pytest.approx(0.2 + 0.4 * 0.5 ** (t / 20))
    assert decayed(0.3, 0.1, 0.0, 1000) == 0.3


def test_state_is_mean_encoding_of_top_k() -> None:
    space = Space("s", [Categorical("a", (0, 1, 2)), Categorical("b", ("x", "y"))])
    agent = L2NASAgent(space, {"top_k": 2}, seed=0)
    assert np.allclose(agent.current_state(), [1 / 3, 1 / 3, 1 / 3, 0.5, 0.5])
    history = [([0, 0], 1.0), ([1, 1], 5.0), ([2, 1], None), ([2, 0], 3.0), ([0, 1], 2.0)]
    for indices, reward in history:
        agent.tell([(Proposal(space.from_indices(indices)), reward)])
    best = [space.encode(space.from_indices(i)) for i in ([1, 1], [2, 0])]
    assert np.allclose(agent.current_state(), np.mean(best, axis=0))
    assert np.allclose(agent.current_state(), [0, 0.5, 0.5, 0.5, 0.5])
    # A tie with the K-th keeps the earlier architecture.
    agent.tell([(Proposal(space.from_indices([0, 0])), 3.0)])
    assert np.allclose(agent.current_state(), np.mean(best, axis=0))


def test_raw_action_is_stored_and_decodes_to_the_candidate() -> None:
    space = create_space("nb201")
    agent = L2NASAgent(space, {**SMALL, "epsilon_start": 0.3}, seed=5)
    sources = set()
    for _ in range(40):
        (proposal,) = agent.ask()
        action = proposal.info["action"]
        assert isinstance(action, list) and len(action) == space.dim and all(isinstance(v, float) for v in action)
        assert space.decode(action) == proposal.candidate
        assert np.allclose(proposal.info["state"], agent.current_state())
        sources.add(proposal.info["source"])
        agent.tell([(proposal, conv_count(proposal.candidate))])
    assert {"random", "actor"} <= sources
    assert math.isfinite(proposal.info["q_pred"])


def test_no_repeats_until_the_space_is_exhausted() -> None:
    space = Space("tiny", [Categorical("a", (0, 1, 2)), Categorical("b", (0, 1, 2))])
    agent = L2NASAgent(space, {**SMALL, "initial_random": 0, "epsilon_start": 0.0, "epsilon_end": 0.0}, seed=1)
    keys = [space.key(p.candidate) for p in agent.ask(9)]
    assert len(set(keys)) == 9
    assert len(agent.ask(3)) == 3  # repeats are allowed once nothing new is left


def test_failed_trials_are_counted_not_learned() -> None:
    evaluator = ToyEvaluator(4, 5)
    agent = L2NASAgent(evaluator.space, SMALL, seed=0)
    proposals = agent.ask(3)
    diag = agent.tell([(proposals[0], None), (proposals[1], float("nan")),
                       (proposals[2], evaluator.reward_of(proposals[2].candidate))])
    assert diag["failed"] == 2.0 and diag["buffer_size"] == 1.0 and len(agent.top) == 1
    assert agent.seen.contains(np.array([agent.space.indices(proposals[0].candidate)]))[0]  # never proposed again


def test_tell_diagnostics_after_updates() -> None:
    evaluator = ToyEvaluator(4, 5)
    agent = L2NASAgent(evaluator.space, {**SMALL, "updates_per_result": 2}, seed=0)
    drive(agent, evaluator.reward_of, 10)
    (proposal,) = agent.ask()
    diag = agent.tell([(proposal, evaluator.reward_of(proposal.candidate))])
    for name in ("critic_loss", "actor_q", "epsilon", "noise_std", "topk_mean_reward", "best_reward",
                 "buffer_size", "q_pred", "updates"):
        assert math.isfinite(diag[name]), name
    assert diag["buffer_size"] == 11.0 and diag["updates"] == 20.0  # warmup 2: results 2..11 each update twice
    assert diag["best_reward"] == agent.top[0][0] == max(r for r, _, _ in agent.top)


def test_block_softmax_and_buffer_and_scale() -> None:
    out = block_softmax(np.array([[0.0, 0.0, 1.0, 1.0, 1.0]]), BlockSums((2, 3)))
    assert np.allclose(out, [[0.5, 0.5, 1 / 3, 1 / 3, 1 / 3]])
    buffer = ReplayBuffer(dim=2, decisions=1, capacity=20, top_n=5)
    for i in range(30):
        buffer.add(np.array([i, i]), [i % 3], float(i if i != 3 else 100))
    assert len(buffer) == 20 and sorted(buffer.rewards) == list(range(10, 30))  # the ring: the 20 newest
    assert sorted(buffer.elite()) == [26, 27, 28, 29, 100]  # the elite keeps the best ever, 3 included
    states, archs, rewards = buffer.sample(np.random.default_rng(0), 40, top_share=0.5)
    assert all(r >= 26 for r in rewards[:20]) and all(10 <= r < 30 for r in rewards[20:])
    assert np.array_equal(states[:, 0], np.where(rewards == 100, 3, rewards)) and archs.shape == (40, 1)
    restored = ReplayBuffer(dim=2, decisions=1, capacity=20, top_n=5)
    restored.load_state_dict(buffer.state_dict())
    assert sorted(restored.rewards) == sorted(buffer.rewards) and sorted(restored.elite()) == sorted(buffer.elite())
    scale = TopScale(clip=2.0)
    best = np.array([90.0, 91.0, 92.0])
    scale.fit(best)
    assert np.allclose(scale(best), (best - best.mean()) / best.std())
    assert scale(np.array([10.0]))[0] == -2.0  # far below the top: clipped
    assert scale.inverse(float(scale(np.array([91.5]))[0])) == pytest.approx(91.5)


def test_a_wrapped_ring_is_restored_where_its_rows_lay() -> None:
    """Batches draw ring rows by position: a restored ring draws what the original draws (it was restored
    oldest first, and every resume of a search beyond buffer_capacity results went another way)."""
    buffer = ReplayBuffer(dim=2, decisions=1, capacity=20, top_n=5)
    for i in range(33):
        buffer.add(np.array([i, -i]), [i % 3], float(i))
    restored = ReplayBuffer(dim=2, decisions=1, capacity=20, top_n=5)
    restored.load_state_dict(roundtrip_state_of(buffer.state_dict()))
    for _ in range(3):
        for b in (buffer, restored):
            b.add(np.array([7, 7]), [1], 50.0)
        drawn = [b.sample(np.random.default_rng(5), 16, top_share=0.25) for b in (buffer, restored)]
        assert all(np.array_equal(x, y) for x, y in zip(*drawn))
    old_format = buffer.state_dict() | {"states": buffer.states, "archs": buffer.archs, "rewards": buffer.rewards}
    del old_format["next"]  # a checkpoint written before the position was kept still loads
    restored.load_state_dict(old_format)
    assert sorted(restored.rewards) == sorted(buffer.rewards)
    with pytest.raises(ValueError, match="next write at 25 does not fit 20 entries of capacity 20"):
        restored.load_state_dict(buffer.state_dict() | {"next": 25})


def test_an_agent_restored_after_its_ring_wrapped_goes_on_identically() -> None:
    evaluator = ToyEvaluator(5, 4)
    options = SMALL | {"buffer_capacity": 10}
    agents = [L2NASAgent(evaluator.space, options, seed=2) for _ in range(2)]
    for agent in agents:
        drive(agent, evaluator.reward_of, 25)  # 25 results: the ring of 10 wrapped twice
    restored = L2NASAgent(evaluator.space, options, seed=0)
    restored.load_state_dict(roundtrip_state(agents[1]))
    assert drive(agents[0], evaluator.reward_of, 15) == drive(restored, evaluator.reward_of, 15)
    assert np.array_equal(agents[0].critic.net.theta, restored.critic.net.theta)  # the same batches learned from


@pytest.mark.parametrize("sizes", [(5,) * 6, (200,) * 4])
def test_seen_set_exact_and_bloom(sizes: tuple) -> None:
    seen = SeenSet(sizes)
    assert seen.exact == (len(sizes) == 6)
    rng = np.random.default_rng(0)
    rows = np.unique(rng.integers(sizes[0], size=(300, len(sizes))), axis=0)
    for row in rows[:150]:
        seen.add(row)
    assert seen.contains(rows[:150]).all() and seen.count == 150
    assert seen.contains(rows[150:]).sum() <= (0 if seen.exact else 1)
    copy = SeenSet(sizes)
    copy.load_state_dict(roundtrip_state_of(seen.state_dict()))
    assert np.array_equal(copy.contains(rows), seen.contains(rows)) and copy.count == 150
    tiny = SeenSet((2, 2))
    for row in ((0, 0), (0, 1), (1, 0), (1, 1)):
        assert not tiny.exhausted()
        tiny.add(row)
    assert tiny.exhausted()


def roundtrip_state_of(state: dict) -> dict:
    return checkpoint.decode(checkpoint.encode(state))


def test_checkpoint_size_does_not_grow_with_trials() -> None:
    evaluator = ToyEvaluator(6, 5)
    agent = L2NASAgent(evaluator.space, {**SMALL, "buffer_capacity": 100}, seed=0)
    sizes = []
    for _ in range(3):
        drive(agent, evaluator.reward_of, 150)
        sizes.append(len(checkpoint.encode(agent.state_dict())))
    assert max(sizes) - min(sizes) < 0.01 * min(sizes), sizes


def test_learn_false_never_trains_nor_ranks() -> None:
    evaluator = ToyEvaluator(5, 4)
    agent = L2NASAgent(evaluator.space, {**SMALL, "learn": False}, seed=0)
    actor, critic = agent.actor.net.theta.copy(), agent.critic.net.theta.copy()
    for _ in range(40):
        (p,) = agent.ask()
        assert math.isnan(p.info["q_pred"])
        diag = agent.tell([(p, evaluator.reward_of(p.candidate))])
        assert math.isnan(diag["critic_loss"]) and diag["updates"] == 0
    assert np.array_equal(actor, agent.actor.net.theta) and np.array_equal(critic, agent.critic.net.theta)
    # The untrained actor's argmax is the per-decision mode of the top-K (the state).
    state = agent.current_state()
    mean = agent.actor.forward(state[None])[0][0]
    assert np.array_equal(agent._argmax(mean[None])[0], agent._argmax(state[None])[0])


def test_learning_finds_the_cifar100_optimum_sooner_than_top_k_local_search() -> None:
    """The critic's ranking is what makes the difference (real NAS-Bench-201 table, seeds 0-5)."""
    from rlnas.evaluators.tabular import NB201Evaluator

    ev = NB201Evaluator("cifar100")
    optimum = ev.optimum("valid_acc")[0]
    queries = {}
    for learn in (True, False):
        found = []
        for seed in range(6):
            agent = L2NASAgent(ev.space, {"learn": learn}, seed=seed)
            asked = 0
            while asked < 300:
                (p,) = agent.ask()
                agent.tell([(p, ev.evaluate(p.candidate).metrics["valid_acc"])])
                asked += 1
                if ev.space.key(p.candidate) == optimum:
                    break
            found.append(asked)
        queries[learn] = np.mean(found)
    assert queries[True] < 0.8 * queries[False], queries


@pytest.mark.parametrize("bad", [
    {"top_k": 0}, {"quantile": 1.0}, {"quantile": 0.0}, {"epsilon_start": 1.5}, {"noise_end": -0.1},
    {"actor_lr": 0.0}, {"transfer": "everything"}, {"learn": 1}, {"reward_clip": 0.0}, {"pool": 0}, {"batch": 2.5},
    {"retry_growth": 0.5}, {"warmup": -1}, {"top_share": 2.0}, {"nope": 1},
])
def test_bad_config_raises_config_error(bad: dict) -> None:
    with pytest.raises(ConfigError):
        L2NASAgent(ToyEvaluator().space, bad)
    assert L2NASConfig().to_dict()["top_k"] >= 1


def test_learns_the_toy_optimum() -> None:
    evaluator = ToyEvaluator(decisions=6, choices=5)
    optimum = evaluator.space.key(evaluator.optimum)
    found = []
    for seed in range(5):
        agent = L2NASAgent(evaluator.space, seed=seed)
        keys = drive(agent, evaluator.reward_of, 200)  # 15,625 architectures; seeds 0-9 need 64-134
        found.append(optimum in keys)
    assert sum(found) >= 4, found


def test_load_policy_takes_networks_and_top_k_but_not_rewards_or_rng() -> None:
    evaluator = ToyEvaluator(5, 4)
    source = L2NASAgent(evaluator.space, {**SMALL, "top_k": 3}, seed=0)
    drive(source, evaluator.reward_of, 40)
    top = [ix for _, _, ix in source.top]
    target = L2NASAgent(evaluator.space, {**SMALL, "top_k": 3}, seed=7)
    untouched = L2NASAgent(evaluator.space, {**SMALL, "top_k": 3}, seed=7)
    rng_before = target.rng.bit_generator.state
    target.load_policy(roundtrip_state(source))
    assert np.array_equal(target.actor.net.theta, source.actor.net.theta)
    assert np.array_equal(target.critic.net.theta, source.critic.net.theta)
    assert target.rng.bit_generator.state == rng_before  # own seed, own generator
    assert len(target.buffer) == 0 and target.top == [] and target.asked == 0  # no rewards carried over
    assert np.allclose(target.current_state(), np.mean([evaluator.space.encode(evaluator.space.from_indices(ix))
                                                        for ix in top], axis=0))
    first = target.ask(3)
    assert [tuple(evaluator.space.indices(p.candidate)) for p in first] == top
    assert {p.info["source"] for p in first} == {"transfer"}
    assert [p.candidate for p in first] != [p.candidate for p in untouched.ask(3)]


def test_transferred_agent_resumes_identically() -> None:
    evaluator = ToyEvaluator(5, 4)
    source = L2NASAgent(evaluator.space, SMALL, seed=0)
    drive(source, evaluator.reward_of, 30)
    agents = [L2NASAgent(evaluator.space, SMALL, seed=4) for _ in range(2)]
    for agent in agents:
        agent.load_policy(source.state_dict())
        drive(agent, evaluator.reward_of, 3)  # mid-way through the transferred top-K
    restored = L2NASAgent(evaluator.space, SMALL, seed=99)
    restored.load_state_dict(roundtrip_state(agents[1]))
    assert restored.transferred == agents[0].transferred and restored.prior == agents[0].prior
    assert drive(agents[0], evaluator.reward_of, 20) == drive(restored, evaluator.reward_of, 20)


def test_load_policy_refuses_networks_of_another_shape() -> None:
    source = L2NASAgent(ToyEvaluator(5, 4).space, SMALL, seed=0)
    target = L2NASAgent(ToyEvaluator(3, 4).space, SMALL, seed=0)
    with pytest.raises(ConfigError, match="weights"):
        target.load_policy(source.state_dict())


@pytest.mark.parametrize("options, message", [
    ({"hidden": 10 ** 12}, "l2nas option hidden must be an integer from 1 to 4,096, got 1000000000000"),
    ({"buffer_capacity": 10 ** 12}, "l2nas option buffer_capacity must be an integer from 1 to 1,000,000"),
    ({"critics": 0}, "l2nas option critics must be an integer from 1 to 64, got 0"),
    ({"random_pool": 10 ** 8}, "l2nas option random_pool must be an integer from 0 to 100,000, got 100000000"),
    ({"updates_per_result": 10 ** 8}, "l2nas option updates_per_result must be an integer from 0 to 1,000"),
    ({"warmup": -1}, "l2nas option warmup must be an integer >= 0, got -1"),
    ({"epsilon_end": 0.9}, r"l2nas option epsilon_end is the floor epsilon_start decays to: at most epsilon_start "
                           r"\(0.1\), got 0.9"),
    ({"noise_end": 2.0}, "l2nas option noise_end is the floor noise_start decays to"),
])
def test_sizes_are_bounded_and_floors_are_below_their_starts(options, message):
    with pytest.raises(ConfigError, match=message):
        L2NASConfig(**options)


def test_block_sums_of_a_large_encoding_equal_the_dense_product() -> None:
    from rlnas.agents.l2nas_parts import DENSE_BLOCK_DIM

    sizes = [3, 1, 5] * ((DENSE_BLOCK_DIM // 9) + 1)  # past the dense limit
    sums = BlockSums(sizes)
    assert sums.matrix is None
    x = np.random.default_rng(0).random((4, sum(sizes))).astype(np.float32)
    assert np.allclose(sums(x), x @ block_matrix(sizes), rtol=1e-5)
    e = np.exp(x)
    assert np.allclose(block_softmax(x, sums), e / (e @ block_matrix(sizes)), rtol=1e-5)


def test_a_space_smaller_than_the_pool_runs_on_with_repeats() -> None:
    # 3 candidates, pool 32: each ask widened its noise for every level; after ~150 trials
    # retry_growth ** level overflowed (OverflowError), ending the search
    space = Space("s", [Categorical("a", (0, 1, 2))])
    agent = L2NASAgent(space, seed=0)
    keys = drive(agent, lambda c: float(c["a"]), 400)
    assert sorted(set(keys)) == sorted(space.key(space.from_indices([i])) for i in range(3))
    huge = L2NASAgent(space, {"retry_growth": 1e308}, seed=0)
    assert len(drive(huge, lambda c: float(c["a"]), 30)) == 30


def test_two_edits_are_made_only_when_used() -> None:
    space = Space("wide", [Categorical(f"d{i}", tuple(range(20))) for i in range(20)])  # 380 one-edits
    assert len(L2NASAgent(space, seed=0).edits[1]) == 0
    assert len(L2NASAgent(space, {"neighbours": 2}, seed=0).edits[1]) == 20 * 19 // 2 * 19 * 19  # decision pairs
