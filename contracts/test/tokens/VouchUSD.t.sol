// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "../utils/Test.sol";
import {VouchUSD} from "../../src/tokens/VouchUSD.sol";
import {IERC3009} from "../../src/interfaces/IERC3009.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title MockERC1271Wallet
/// @notice A smart-contract wallet for the tests: accepts, through ERC-1271, ECDSA signatures of its owner key, either
/// as 65 bytes (r‖s‖v) or as 66 bytes prefixed by a 0x01 type byte (a non-ECDSA-length format an EOA cannot use).
contract MockERC1271Wallet {
    /// @notice The key holder whose signatures the wallet accepts.
    address public immutable signer;

    /// @notice Deploys the wallet for `signer_`.
    /// @param signer_ The key holder.
    constructor(address signer_) {
        signer = signer_;
    }

    /// @notice ERC-1271: returns the magic value iff `signature` is the owner's signature of `hash`.
    /// @param hash The signed digest.
    /// @param signature 65-byte r‖s‖v, or 0x01 ‖ r‖s‖v.
    /// @return magic `0x1626ba7e` if valid, `0xffffffff` otherwise.
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4 magic) {
        bytes memory ecdsa = signature;
        if (signature.length == 66 && signature[0] == 0x01) ecdsa = signature[1:];
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, ecdsa);
        return err == ECDSA.RecoverError.NoError && recovered == signer ? bytes4(0x1626ba7e) : bytes4(0xffffffff);
    }
}

/// @title RevertingERC1271Wallet
/// @notice A wallet whose `isValidSignature` always reverts.
contract RevertingERC1271Wallet {
    /// @notice Always reverts.
    function isValidSignature(bytes32, bytes calldata) external pure returns (bytes4) {
        revert("no");
    }
}

/// @title VouchUSDTest
/// @notice Unit and fuzz tests of VouchUSD: metadata, minting, EIP-3009 (both overloads of transfer, receive and
/// cancel), ERC-1271 wallets, EIP-2612 permit, x402 client-side digests, and gas of one settlement.
/// @dev Every digest here is computed independently of the token (typehash strings, EIP-712 domain built from
/// "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"), never with its helpers.
contract VouchUSDTest is Test {
    // Events of the token, re-declared to be matched with vm.expectEmit.
    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);
    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
    event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);
    // ds-test log events: forge prints them with -vv.
    event log_named_uint(string key, uint256 val);

    /// @dev The fields of an EIP-3009 transfer or receive authorization.
    struct Authorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }

    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant TRANSFER_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant RECEIVE_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant CANCEL_TYPEHASH = keccak256("CancelAuthorization(address authorizer,bytes32 nonce)");
    bytes32 internal constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    /// @dev secp256k1 group order.
    uint256 internal constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    uint256 internal constant START = 1_700_000_000;
    uint256 internal constant ALICE_KEY = 0xA11CE;
    uint256 internal constant WALLET_OWNER_KEY = 0x5AFE;
    uint256 internal constant INITIAL = 1000e6;
    bytes32 internal constant NONCE = keccak256("nonce-1");

    VouchUSD internal token;
    MockERC1271Wallet internal wallet;
    address internal owner = address(0x0A11);
    address internal alice;
    address internal bob = address(0xB0B);
    address internal mallory = address(0xBAD);

    function setUp() external {
        vm.warp(START);
        alice = vm.addr(ALICE_KEY);
        token = new VouchUSD(owner);
        wallet = new MockERC1271Wallet(vm.addr(WALLET_OWNER_KEY));
        vm.startPrank(owner);
        token.mint(alice, INITIAL);
        token.mint(bob, INITIAL);
        token.mint(address(wallet), INITIAL);
        vm.stopPrank();
    }

    // ---------------------------------------------------------------- metadata, domain, minting

    function test_Metadata() external view {
        assertEq(bytes(token.name()), bytes("Vouch USD"), "name");
        assertEq(bytes(token.symbol()), bytes("vUSD"), "symbol");
        assertEq(token.decimals(), 6, "decimals");
        assertEq(bytes(token.version()), bytes("1"), "version");
        assertEq(token.totalSupply(), 3 * INITIAL, "supply");
        assertEq(token.owner(), owner, "owner");
    }

    function test_Typehashes() external view {
        assertEq(token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), TRANSFER_TYPEHASH, "transfer");
        assertEq(token.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(), RECEIVE_TYPEHASH, "receive");
        assertEq(token.CANCEL_AUTHORIZATION_TYPEHASH(), CANCEL_TYPEHASH, "cancel");
        // The values USDC (FiatToken v2) publishes.
        assertEq(TRANSFER_TYPEHASH, 0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267, "usdc transfer");
        assertEq(RECEIVE_TYPEHASH, 0xd099cc98ef71107a616c4f0f941f04c322d8e254fe26b3c6668db87aae413de8, "usdc receive");
        assertEq(CANCEL_TYPEHASH, 0x158b0a9edf7a828aad02f63cd515c68ef2f50ba807396f6d12842833a1597429, "usdc cancel");
    }

    function test_DomainSeparator_MatchesStandardEncoding() external view {
        assertEq(token.DOMAIN_SEPARATOR(), _domainSeparator("Vouch USD", "1", block.chainid, address(token)), "domain");
    }

    function test_Eip712Domain() external view {
        (
            bytes1 fields,
            string memory name,
            string memory version_,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        ) = token.eip712Domain();
        assertEq(uint256(uint8(fields)), 0x0f, "fields: name, version, chainId, verifyingContract");
        assertEq(bytes(name), bytes("Vouch USD"), "name");
        assertEq(bytes(version_), bytes("1"), "version");
        assertEq(chainId, block.chainid, "chainId");
        assertEq(verifyingContract, address(token), "verifyingContract");
        assertEq(salt, bytes32(0), "salt");
        assertEq(extensions.length, 0, "extensions");
    }

    function test_DomainSeparator_FollowsChainId() external {
        vm.chainId(8453);
        assertEq(token.DOMAIN_SEPARATOR(), _domainSeparator("Vouch USD", "1", 8453, address(token)), "domain");
    }

    function test_Mint_ByOwner() external {
        vm.expectEmit(address(token));
        emit Transfer(address(0), mallory, 5e6);
        vm.prank(owner);
        token.mint(mallory, 5e6);
        assertEq(token.balanceOf(mallory), 5e6, "balance");
        assertEq(token.totalSupply(), 3 * INITIAL + 5e6, "supply");
    }

    function test_RevertWhen_Mint_NotOwner() external {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, mallory));
        vm.prank(mallory);
        token.mint(mallory, 1);
    }

    function test_RevertWhen_Mint_ToZeroAddress() external {
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InvalidReceiver.selector, address(0)));
        vm.prank(owner);
        token.mint(address(0), 1);
    }

    function test_TransferOwnership() external {
        vm.prank(owner);
        token.transferOwnership(bob);
        assertEq(token.owner(), bob, "owner");
        vm.prank(bob);
        token.mint(bob, 1);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, owner));
        vm.prank(owner);
        token.mint(owner, 1);
    }

    // ---------------------------------------------------------------- transferWithAuthorization: success

    function test_TransferWithAuthorization_VRS() external {
        Authorization memory a = _auth(alice, bob, 10e6, NONCE);
        (uint8 v, bytes32 r, bytes32 s) = _sign(ALICE_KEY, TRANSFER_TYPEHASH, a);
        _expectUsed(a);
        vm.prank(mallory); // anyone may submit
        _transfer(a, v, r, s);
        _assertMoved(a);
    }

    function test_TransferWithAuthorization_Bytes() external {
        Authorization memory a = _auth(alice, bob, 10e6, NONCE);
        bytes memory sig = _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a);
        assertEq(sig.length, 65, "r||s||v");
        _expectUsed(a);
        vm.prank(mallory);
        _transfer(a, sig);
        _assertMoved(a);
    }

    function test_TransferWithAuthorization_ZeroValue() external {
        Authorization memory a = _auth(alice, bob, 0, NONCE);
        (uint8 v, bytes32 r, bytes32 s) = _sign(ALICE_KEY, TRANSFER_TYPEHASH, a);
        _transfer(a, v, r, s);
        assertTrue(token.authorizationState(alice, NONCE), "nonce used");
        assertEq(token.balanceOf(bob), INITIAL, "bob");
    }

    function test_TransferWithAuthorization_ToSelfAndToToken() external {
        Authorization memory a = _auth(alice, alice, 1e6, NONCE);
        _transfer(a, _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a));
        assertEq(token.balanceOf(alice), INITIAL, "self");
        Authorization memory b = _auth(alice, address(token), 1e6, keccak256("2"));
        _transfer(b, _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, b));
        assertEq(token.balanceOf(address(token)), 1e6, "token");
    }

    function test_TransferWithAuthorization_WindowBoundaries() external {
        // Valid at validAfter + 1 and at validBefore - 1 (strict inequalities, as USDC).
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        a.validAfter = START - 1;
        a.validBefore = START + 1;
        _transfer(a, _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a));
        assertTrue(token.authorizationState(alice, NONCE), "used");
    }

    function test_TransferWithAuthorization_IndependentNonces() external {
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        Authorization memory b = _auth(alice, bob, 2e6, keccak256("nonce-2"));
        _transfer(b, _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, b)); // any order
        _transfer(a, _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a));
        assertEq(token.balanceOf(bob), INITIAL + 3e6, "bob");
        // Another authorizer's identical nonce is untouched.
        assertFalse(token.authorizationState(bob, NONCE), "bob's nonce");
    }

    // ---------------------------------------------------------------- transferWithAuthorization: refusals

    function test_RevertWhen_TransferWithAuthorization_NotYetValid() external {
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        a.validAfter = START; // block.timestamp == validAfter: not yet valid
        (uint8 v, bytes32 r, bytes32 s) = _sign(ALICE_KEY, TRANSFER_TYPEHASH, a);
        vm.expectRevert(abi.encodeWithSelector(VouchUSD.AuthorizationNotYetValid.selector, START, START));
        _transfer(a, v, r, s);
        a.validAfter = START + 100;
        bytes memory sig = _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a);
        vm.expectRevert(abi.encodeWithSelector(VouchUSD.AuthorizationNotYetValid.selector, START + 100, START));
        _transfer(a, sig);
        // It becomes valid one second after validAfter.
        vm.warp(START + 101);
        _transfer(a, sig);
        assertTrue(token.authorizationState(alice, NONCE), "used later");
    }

    function test_RevertWhen_TransferWithAuthorization_Expired() external {
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        a.validBefore = START; // block.timestamp == validBefore: expired
        (uint8 v, bytes32 r, bytes32 s) = _sign(ALICE_KEY, TRANSFER_TYPEHASH, a);
        vm.expectRevert(abi.encodeWithSelector(VouchUSD.AuthorizationExpired.selector, START, START));
        _transfer(a, v, r, s);
        a.validBefore = START - 1;
        bytes memory sig = _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a);
        vm.expectRevert(abi.encodeWithSelector(VouchUSD.AuthorizationExpired.selector, START - 1, START));
        _transfer(a, sig);
    }

    function test_RevertWhen_TransferWithAuthorization_Replayed() external {
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        (uint8 v, bytes32 r, bytes32 s) = _sign(ALICE_KEY, TRANSFER_TYPEHASH, a);
        _transfer(a, v, r, s);
        bytes memory used = abi.encodeWithSelector(VouchUSD.AuthorizationAlreadyUsed.selector, alice, NONCE);
        vm.expectRevert(used);
        _transfer(a, v, r, s);
        // The same signature through the other overload.
        vm.expectRevert(used);
        _transfer(a, abi.encodePacked(r, s, v));
        // A fresh signature of a different transfer with the same nonce.
        Authorization memory b = _auth(alice, mallory, 5e6, NONCE);
        bytes memory sig = _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, b);
        vm.expectRevert(used);
        _transfer(b, sig);
        assertEq(token.balanceOf(bob), INITIAL + 1e6, "paid once");
    }

    function test_RevertWhen_TransferWithAuthorization_WrongSigner() external {
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        (uint8 v, bytes32 r, bytes32 s) = _sign(0xB0B0B, TRANSFER_TYPEHASH, a);
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        _transfer(a, v, r, s);
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        _transfer(a, abi.encodePacked(r, s, v));
        assertFalse(token.authorizationState(alice, NONCE), "unused");
    }

    function test_RevertWhen_TransferWithAuthorization_TamperedFields() external {
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        a.validAfter = START - 100;
        bytes memory sig = _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a);
        Authorization memory t;
        for (uint256 field; field < 5; ++field) {
            t = _copy(a);
            if (field == 0) t.to = mallory;
            if (field == 1) t.value = 2e6;
            if (field == 2) t.validAfter = START - 101;
            if (field == 3) t.validBefore = a.validBefore + 1;
            if (field == 4) t.nonce = keccak256("other");
            vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
            _transfer(t, sig);
        }
        // Claiming another payer: alice's signature does not move bob's funds.
        t = _copy(a);
        t.from = bob;
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        _transfer(t, sig);
    }

    function test_RevertWhen_TransferWithAuthorization_WrongDomain() external {
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        bytes32 structHash = _structHash(TRANSFER_TYPEHASH, a);
        bytes32[4] memory domains = [
            _domainSeparator("USD Coin", "1", block.chainid, address(token)),
            _domainSeparator("Vouch USD", "2", block.chainid, address(token)),
            _domainSeparator("Vouch USD", "1", block.chainid + 1, address(token)),
            _domainSeparator("Vouch USD", "1", block.chainid, address(0x1234))
        ];
        for (uint256 i; i < domains.length; ++i) {
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(ALICE_KEY, _digest(domains[i], structHash));
            vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
            _transfer(a, v, r, s);
        }
    }

    function test_RevertWhen_TransferWithAuthorization_ChainForked() external {
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        bytes memory sig = _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a);
        vm.chainId(block.chainid + 1); // same contract, other chain id: the domain separator is rebuilt
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        _transfer(a, sig);
    }

    function test_RevertWhen_TransferWithAuthorization_MalformedSignature() external {
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        (uint8 v, bytes32 r, bytes32 s) = _sign(ALICE_KEY, TRANSFER_TYPEHASH, a);
        // High-s twin of a valid signature (malleability): refused.
        bytes32 highS = bytes32(SECP256K1_N - uint256(s));
        uint8 flippedV = v == 27 ? 28 : 27;
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        _transfer(a, flippedV, r, highS);
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        _transfer(a, abi.encodePacked(r, highS, flippedV));
        // v in {0, 1} instead of {27, 28}: refused.
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        _transfer(a, v - 27, r, s);
        // Wrong lengths: empty, 64-byte (ERC-2098 compact), 66-byte.
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        _transfer(a, "");
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        _transfer(a, abi.encodePacked(r, s));
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        _transfer(a, abi.encodePacked(r, s, v, uint8(0)));
        // Zero signature.
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        _transfer(a, 0, bytes32(0), bytes32(0));
        // The untouched signature still works.
        _transfer(a, v, r, s);
    }

    function test_RevertWhen_TransferWithAuthorization_FromZeroAddress() external {
        Authorization memory a = _auth(address(0), bob, 1e6, NONCE);
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        _transfer(a, 0, bytes32(0), bytes32(0));
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        _transfer(a, new bytes(65));
    }

    function test_RevertWhen_TransferWithAuthorization_InsufficientBalance() external {
        Authorization memory a = _auth(alice, bob, INITIAL + 1, NONCE);
        bytes memory sig = _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, alice, INITIAL, INITIAL + 1)
        );
        _transfer(a, sig);
        // The revert rolled the nonce back: the same authorization succeeds once funded.
        assertFalse(token.authorizationState(alice, NONCE), "unused after revert");
        vm.prank(owner);
        token.mint(alice, 1);
        _transfer(a, sig);
        assertEq(token.balanceOf(alice), 0, "drained");
    }

    function test_RevertWhen_TransferWithAuthorization_ToZeroAddress() external {
        Authorization memory a = _auth(alice, address(0), 1e6, NONCE);
        bytes memory sig = _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a);
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InvalidReceiver.selector, address(0)));
        _transfer(a, sig);
    }

    function test_RevertWhen_TransferWithAuthorization_Cancelled() external {
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        bytes memory sig = _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a);
        token.cancelAuthorization(alice, NONCE, _signCancelBytes(ALICE_KEY, alice, NONCE));
        vm.expectRevert(abi.encodeWithSelector(VouchUSD.AuthorizationAlreadyUsed.selector, alice, NONCE));
        _transfer(a, sig);
    }

    // ---------------------------------------------------------------- cross-function replay

    function test_RevertWhen_ReceiveSignatureUsedAsTransfer() external {
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        (uint8 v, bytes32 r, bytes32 s) = _sign(ALICE_KEY, RECEIVE_TYPEHASH, a);
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        _transfer(a, v, r, s);
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        _transfer(a, abi.encodePacked(r, s, v));
        // It remains usable for what it was signed for.
        vm.prank(bob);
        _receive(a, v, r, s);
        assertEq(token.balanceOf(bob), INITIAL + 1e6, "received");
    }

    function test_RevertWhen_TransferSignatureUsedAsReceive() external {
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        (uint8 v, bytes32 r, bytes32 s) = _sign(ALICE_KEY, TRANSFER_TYPEHASH, a);
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        vm.prank(bob);
        _receive(a, v, r, s);
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        vm.prank(bob);
        _receive(a, abi.encodePacked(r, s, v));
    }

    function test_RevertWhen_TransferSignatureUsedAsCancel() external {
        // Even a transfer of the nonce to oneself with zero value, signed as a transfer, is not a cancellation.
        Authorization memory a = _auth(alice, alice, 0, NONCE);
        (uint8 v, bytes32 r, bytes32 s) = _sign(ALICE_KEY, TRANSFER_TYPEHASH, a);
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        token.cancelAuthorization(alice, NONCE, v, r, s);
    }

    function test_RevertWhen_CancelSignatureUsedAsTransfer() external {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ALICE_KEY, _tokenDigest(_cancelStructHash(alice, NONCE)));
        Authorization memory a = _auth(alice, mallory, 1e6, NONCE);
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        _transfer(a, v, r, s);
    }

    function test_RevertWhen_NonceSharedAcrossFunctions() external {
        // A nonce used by receive cannot be used by transfer (one nonce space per authorizer), and vice versa.
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        bytes memory receiveSig = _signBytes(ALICE_KEY, RECEIVE_TYPEHASH, a);
        bytes memory transferSig = _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a);
        vm.prank(bob);
        _receive(a, receiveSig);
        vm.expectRevert(abi.encodeWithSelector(VouchUSD.AuthorizationAlreadyUsed.selector, alice, NONCE));
        _transfer(a, transferSig);

        Authorization memory b = _auth(alice, bob, 1e6, keccak256("nonce-2"));
        receiveSig = _signBytes(ALICE_KEY, RECEIVE_TYPEHASH, b);
        _transfer(b, _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, b));
        vm.expectRevert(abi.encodeWithSelector(VouchUSD.AuthorizationAlreadyUsed.selector, alice, b.nonce));
        vm.prank(bob);
        _receive(b, receiveSig);
        assertEq(token.balanceOf(bob), INITIAL + 2e6, "paid twice, once per nonce");
    }

    // ---------------------------------------------------------------- receiveWithAuthorization

    function test_ReceiveWithAuthorization_VRS() external {
        Authorization memory a = _auth(alice, bob, 10e6, NONCE);
        (uint8 v, bytes32 r, bytes32 s) = _sign(ALICE_KEY, RECEIVE_TYPEHASH, a);
        _expectUsed(a);
        vm.prank(bob);
        _receive(a, v, r, s);
        _assertMoved(a);
    }

    function test_ReceiveWithAuthorization_Bytes() external {
        Authorization memory a = _auth(alice, bob, 10e6, NONCE);
        bytes memory sig = _signBytes(ALICE_KEY, RECEIVE_TYPEHASH, a);
        _expectUsed(a);
        vm.prank(bob);
        _receive(a, sig);
        _assertMoved(a);
    }

    function test_RevertWhen_ReceiveWithAuthorization_CallerNotPayee() external {
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        (uint8 v, bytes32 r, bytes32 s) = _sign(ALICE_KEY, RECEIVE_TYPEHASH, a);
        bytes memory err = abi.encodeWithSelector(VouchUSD.CallerMustBePayee.selector, mallory, bob);
        vm.expectRevert(err);
        vm.prank(mallory);
        _receive(a, v, r, s);
        vm.expectRevert(err);
        vm.prank(mallory);
        _receive(a, abi.encodePacked(r, s, v));
        // Not even the payer may submit it.
        vm.expectRevert(abi.encodeWithSelector(VouchUSD.CallerMustBePayee.selector, alice, bob));
        vm.prank(alice);
        _receive(a, v, r, s);
    }

    function test_RevertWhen_ReceiveWithAuthorization_NotYetValid() external {
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        a.validAfter = START;
        bytes memory sig = _signBytes(ALICE_KEY, RECEIVE_TYPEHASH, a);
        vm.expectRevert(abi.encodeWithSelector(VouchUSD.AuthorizationNotYetValid.selector, START, START));
        vm.prank(bob);
        _receive(a, sig);
    }

    function test_RevertWhen_ReceiveWithAuthorization_Expired() external {
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        a.validBefore = START;
        (uint8 v, bytes32 r, bytes32 s) = _sign(ALICE_KEY, RECEIVE_TYPEHASH, a);
        vm.expectRevert(abi.encodeWithSelector(VouchUSD.AuthorizationExpired.selector, START, START));
        vm.prank(bob);
        _receive(a, v, r, s);
    }

    function test_RevertWhen_ReceiveWithAuthorization_Replayed() external {
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        (uint8 v, bytes32 r, bytes32 s) = _sign(ALICE_KEY, RECEIVE_TYPEHASH, a);
        vm.prank(bob);
        _receive(a, v, r, s);
        vm.expectRevert(abi.encodeWithSelector(VouchUSD.AuthorizationAlreadyUsed.selector, alice, NONCE));
        vm.prank(bob);
        _receive(a, abi.encodePacked(r, s, v));
    }

    function test_RevertWhen_ReceiveWithAuthorization_WrongSigner() external {
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        bytes memory sig = _signBytes(0xB0B0B, RECEIVE_TYPEHASH, a);
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        vm.prank(bob);
        _receive(a, sig);
    }

    function test_ReceiveWithAuthorization_FrontRunnerCannotSubmit() external {
        // A mempool observer copies the payee's pending receive call: it cannot submit it, so the nonce stays
        // unused and the payee's own transaction (the one that also does the payee's bookkeeping) succeeds.
        Authorization memory a = _auth(alice, bob, 7e6, NONCE);
        bytes memory sig = _signBytes(ALICE_KEY, RECEIVE_TYPEHASH, a);
        vm.expectRevert(abi.encodeWithSelector(VouchUSD.CallerMustBePayee.selector, mallory, bob));
        vm.prank(mallory);
        _receive(a, sig);
        assertFalse(token.authorizationState(alice, NONCE), "still unused");
        vm.prank(bob);
        _receive(a, sig);
        _assertMoved(a);
    }

    function test_TransferWithAuthorization_FrontRunLandsAtPayee() external {
        // With transferWithAuthorization a front-runner CAN submit first: the funds still go exactly to `to`, and the
        // intended submitter's call then reverts AuthorizationAlreadyUsed (what VouchProtocol.openPaidCall sees).
        Authorization memory a = _auth(alice, bob, 7e6, NONCE);
        bytes memory sig = _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a);
        vm.prank(mallory);
        _transfer(a, sig);
        _assertMoved(a);
        assertEq(token.balanceOf(mallory), 0, "front-runner gained nothing");
        vm.expectRevert(abi.encodeWithSelector(VouchUSD.AuthorizationAlreadyUsed.selector, alice, NONCE));
        vm.prank(bob);
        _transfer(a, sig);
    }

    // ---------------------------------------------------------------- cancelAuthorization

    function test_CancelAuthorization_VRS() external {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ALICE_KEY, _tokenDigest(_cancelStructHash(alice, NONCE)));
        vm.expectEmit(address(token));
        emit AuthorizationCanceled(alice, NONCE);
        vm.prank(mallory); // anyone may submit
        token.cancelAuthorization(alice, NONCE, v, r, s);
        assertTrue(token.authorizationState(alice, NONCE), "cancelled");
    }

    function test_CancelAuthorization_Bytes() external {
        bytes memory sig = _signCancelBytes(ALICE_KEY, alice, NONCE);
        vm.expectEmit(address(token));
        emit AuthorizationCanceled(alice, NONCE);
        token.cancelAuthorization(alice, NONCE, sig);
        assertTrue(token.authorizationState(alice, NONCE), "cancelled");
        // Cancelled receive authorizations are refused too.
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        bytes memory receiveSig = _signBytes(ALICE_KEY, RECEIVE_TYPEHASH, a);
        vm.expectRevert(abi.encodeWithSelector(VouchUSD.AuthorizationAlreadyUsed.selector, alice, NONCE));
        vm.prank(bob);
        _receive(a, receiveSig);
    }

    function test_RevertWhen_CancelAuthorization_AlreadyCancelled() external {
        bytes memory sig = _signCancelBytes(ALICE_KEY, alice, NONCE);
        token.cancelAuthorization(alice, NONCE, sig);
        vm.expectRevert(abi.encodeWithSelector(VouchUSD.AuthorizationAlreadyUsed.selector, alice, NONCE));
        token.cancelAuthorization(alice, NONCE, sig);
    }

    function test_RevertWhen_CancelAuthorization_AlreadyUsed() external {
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        _transfer(a, _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ALICE_KEY, _tokenDigest(_cancelStructHash(alice, NONCE)));
        vm.expectRevert(abi.encodeWithSelector(VouchUSD.AuthorizationAlreadyUsed.selector, alice, NONCE));
        token.cancelAuthorization(alice, NONCE, v, r, s);
    }

    function test_RevertWhen_CancelAuthorization_InvalidSignature() external {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(0xB0B0B, _tokenDigest(_cancelStructHash(alice, NONCE)));
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        token.cancelAuthorization(alice, NONCE, v, r, s);
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        token.cancelAuthorization(alice, NONCE, abi.encodePacked(r, s, v));
        // Alice's cancellation of one nonce does not cancel another.
        bytes memory sig = _signCancelBytes(ALICE_KEY, alice, NONCE);
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        token.cancelAuthorization(alice, keccak256("other"), sig);
        assertFalse(token.authorizationState(alice, NONCE), "unused");
    }

    // ---------------------------------------------------------------- ERC-1271 wallets and accounts with code

    function test_TransferWithAuthorization_ERC1271Wallet() external {
        Authorization memory a = _auth(address(wallet), bob, 3e6, NONCE);
        bytes memory sig = _signBytes(WALLET_OWNER_KEY, TRANSFER_TYPEHASH, a);
        _expectUsed(a);
        _transfer(a, sig);
        _assertMoved(a);
    }

    function test_TransferWithAuthorization_ERC1271Wallet_NonEcdsaLength() external {
        Authorization memory a = _auth(address(wallet), bob, 3e6, NONCE);
        bytes memory sig = abi.encodePacked(bytes1(0x01), _signBytes(WALLET_OWNER_KEY, TRANSFER_TYPEHASH, a));
        assertEq(sig.length, 66, "66 bytes");
        _transfer(a, sig);
        _assertMoved(a);
    }

    function test_TransferWithAuthorization_ERC1271Wallet_VRS() external {
        // The v, r, s overload hands r||s||v to the wallet, as USDC does.
        Authorization memory a = _auth(address(wallet), bob, 3e6, NONCE);
        (uint8 v, bytes32 r, bytes32 s) = _sign(WALLET_OWNER_KEY, TRANSFER_TYPEHASH, a);
        _transfer(a, v, r, s);
        _assertMoved(a);
    }

    function test_ReceiveAndCancel_ERC1271Wallet() external {
        Authorization memory a = _auth(address(wallet), bob, 3e6, NONCE);
        vm.prank(bob);
        _receive(a, _signBytes(WALLET_OWNER_KEY, RECEIVE_TYPEHASH, a));
        _assertMoved(a);
        bytes32 other = keccak256("other");
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(WALLET_OWNER_KEY, _tokenDigest(_cancelStructHash(address(wallet), other)));
        token.cancelAuthorization(address(wallet), other, v, r, s);
        assertTrue(token.authorizationState(address(wallet), other), "cancelled");
    }

    function test_RevertWhen_ERC1271Wallet_Rejects() external {
        Authorization memory a = _auth(address(wallet), bob, 3e6, NONCE);
        bytes memory sig = _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a); // not the wallet's key
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        _transfer(a, sig);
    }

    function test_RevertWhen_ERC1271Wallet_Reverts() external {
        RevertingERC1271Wallet bad = new RevertingERC1271Wallet();
        Authorization memory a = _auth(address(bad), bob, 0, NONCE);
        bytes memory sig = _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a);
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        _transfer(a, sig);
    }

    function test_RevertWhen_ContractWithoutERC1271() external {
        // A contract without isValidSignature (the token itself) cannot authorize anything.
        Authorization memory a = _auth(address(token), bob, 0, NONCE);
        bytes memory sig = _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a);
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        _transfer(a, sig);
    }

    function test_TransferWithAuthorization_EOAWithCode() external {
        // An account with code whose key still signs (e.g. EIP-7702 delegation to a wallet without ERC-1271): its
        // 65-byte ECDSA signature is accepted, in both overloads; a wrong ECDSA signature still falls to ERC-1271.
        vm.etch(alice, hex"00"); // STOP: no isValidSignature
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        _transfer(a, _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a));
        Authorization memory b = _auth(alice, bob, 1e6, keccak256("nonce-2"));
        (uint8 v, bytes32 r, bytes32 s) = _sign(ALICE_KEY, TRANSFER_TYPEHASH, b);
        _transfer(b, v, r, s);
        assertEq(token.balanceOf(bob), INITIAL + 2e6, "paid");
        Authorization memory c = _auth(alice, bob, 1e6, keccak256("nonce-3"));
        bytes memory sig = _signBytes(0xB0B0B, TRANSFER_TYPEHASH, c);
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        _transfer(c, sig);
    }

    // ---------------------------------------------------------------- EIP-2612 permit

    function test_Permit() external {
        uint256 deadline = START + 1 hours;
        assertEq(token.nonces(alice), 0, "nonce 0");
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ALICE_KEY, _permitDigest(alice, bob, 50e6, 0, deadline));
        vm.expectEmit(address(token));
        emit Approval(alice, bob, 50e6);
        vm.prank(mallory); // anyone may submit
        token.permit(alice, bob, 50e6, deadline, v, r, s);
        assertEq(token.allowance(alice, bob), 50e6, "allowance");
        assertEq(token.nonces(alice), 1, "nonce 1");
        vm.prank(bob);
        assertTrue(token.transferFrom(alice, mallory, 20e6), "transferFrom");
        assertEq(token.balanceOf(mallory), 20e6, "moved");
        assertEq(token.allowance(alice, bob), 30e6, "allowance left");
        // Permit nonces and EIP-3009 nonces are separate.
        assertFalse(token.authorizationState(alice, bytes32(0)), "3009 untouched");
    }

    function test_Permit_AtDeadline() external {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ALICE_KEY, _permitDigest(alice, bob, 1, 0, START));
        token.permit(alice, bob, 1, START, v, r, s);
        assertEq(token.allowance(alice, bob), 1, "allowance");
    }

    function test_RevertWhen_Permit_Expired() external {
        uint256 deadline = START - 1;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ALICE_KEY, _permitDigest(alice, bob, 1, 0, deadline));
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612ExpiredSignature.selector, deadline));
        token.permit(alice, bob, 1, deadline, v, r, s);
    }

    function test_RevertWhen_Permit_WrongSigner() external {
        uint256 deadline = START + 1;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(0xB0B0B, _permitDigest(alice, bob, 1, 0, deadline));
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612InvalidSigner.selector, vm.addr(0xB0B0B), alice));
        token.permit(alice, bob, 1, deadline, v, r, s);
    }

    function test_RevertWhen_Permit_Replayed() external {
        uint256 deadline = START + 1;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ALICE_KEY, _permitDigest(alice, bob, 1, 0, deadline));
        token.permit(alice, bob, 1, deadline, v, r, s);
        // The replay is checked against nonce 1, so it recovers some other address.
        address recovered = ecrecover(_permitDigest(alice, bob, 1, 1, deadline), v, r, s);
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612InvalidSigner.selector, recovered, alice));
        token.permit(alice, bob, 1, deadline, v, r, s);
    }

    // ---------------------------------------------------------------- x402 client-side signing

    /// @dev Anvil's default account #0, which the x402 examples use.
    uint256 internal constant X402_PAYER_KEY = 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80;
    address internal constant X402_PAYER = 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266;
    address internal constant X402_PAY_TO = 0x70997970C51812dc3A010C7d01b50e0d17dc79C8;

    function test_X402_StandardDigest_BytesSignature() external {
        (VouchUSD t, Authorization memory a, bytes32 digest) = _x402Setup(keccak256("x402-bytes"));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(X402_PAYER_KEY, digest);
        bytes memory signature = abi.encodePacked(r, s, v); // the "0x…" 65-byte signature of the payload
        assertEq(signature.length, 65, "65 bytes");
        t.transferWithAuthorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, signature);
        _assertX402Settled(t, a);
    }

    function test_X402_StandardDigest_VRS() external {
        (VouchUSD t, Authorization memory a, bytes32 digest) = _x402Setup(keccak256("x402-vrs"));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(X402_PAYER_KEY, digest);
        t.transferWithAuthorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, v, r, s);
        _assertX402Settled(t, a);
    }

    /// @dev Golden vector from an independent EIP-712 implementation (alloy, via `cast wallet sign --data` on the
    /// typed data an x402 client builds: domain {name "Vouch USD", version "1", chainId 31337, verifyingContract
    /// 0x41e7CCF073984b7945Eb6cC6A6aC633948CA2047}, TransferWithAuthorization from anvil #0 to anvil #1, value
    /// 1000000, validAfter 0, validBefore 1700000600, nonce 0x3f1c…d5e6). The token is deployed at that address by
    /// the fixed deployer 0x…D3D1 with nonce 0.
    function test_X402_GoldenSignatureFromIndependentSigner() external {
        bytes memory golden = hex"e6059c070a7b6d500ab6ffad1592eb7e18ce4182b484b18f5262dbd79c0af329"
            hex"4f6d4f538f22417d2c4103f5736a521ba213960635e49030f65204ca8535e691" hex"1c";
        vm.chainId(31_337);
        vm.prank(address(0xD3D1));
        VouchUSD t = new VouchUSD(owner);
        assertEq(address(t), 0x41e7CCF073984b7945Eb6cC6A6aC633948CA2047, "deterministic token address");
        vm.prank(owner);
        t.mint(X402_PAYER, 1e6);
        Authorization memory a = Authorization({
            from: X402_PAYER,
            to: X402_PAY_TO,
            value: 1_000_000,
            validAfter: 0,
            validBefore: 1_700_000_600,
            nonce: 0x3f1c8a9e5b7d2c4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6
        });
        // Our independent digest yields the very same (RFC 6979 deterministic) signature.
        bytes32 digest =
            _digest(_domainSeparator("Vouch USD", "1", 31_337, address(t)), _structHash(TRANSFER_TYPEHASH, a));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(X402_PAYER_KEY, digest);
        assertEq(abi.encodePacked(r, s, v), golden, "same signature as the independent signer");
        t.transferWithAuthorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, golden);
        _assertX402Settled(t, a);
    }

    /// @dev Deploys a token, funds the x402 payer and returns an authorization as the x402 v2 client signs it
    /// (validAfter 0, validBefore now + maxTimeoutSeconds, random nonce) with its digest built the standard way.
    function _x402Setup(bytes32 nonce) internal returns (VouchUSD t, Authorization memory a, bytes32 digest) {
        assertEq(vm.addr(X402_PAYER_KEY), X402_PAYER, "anvil #0");
        t = new VouchUSD(owner);
        vm.prank(owner);
        t.mint(X402_PAYER, 5e6);
        // PaymentRequirements.extra = {name: token.name(), version: token.version()}.
        assertEq(bytes(t.name()), bytes("Vouch USD"), "extra.name");
        assertEq(bytes(t.version()), bytes("1"), "extra.version");
        a = Authorization({
            from: X402_PAYER,
            to: X402_PAY_TO,
            value: 1_000_000, // "$1" at 6 decimals
            validAfter: 0,
            validBefore: block.timestamp + 60, // maxTimeoutSeconds
            nonce: nonce
        });
        bytes32 domainSeparator = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256(bytes("Vouch USD")),
                keccak256(bytes("1")),
                block.chainid,
                address(t)
            )
        );
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(
                    "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
                ),
                a.from,
                a.to,
                a.value,
                a.validAfter,
                a.validBefore,
                a.nonce
            )
        );
        digest = keccak256(abi.encodePacked("\x19\x01", domainSeparator, structHash));
        // Cross-check only after computing it independently.
        assertEq(t.DOMAIN_SEPARATOR(), domainSeparator, "token agrees on the domain separator");
    }

    function _assertX402Settled(VouchUSD t, Authorization memory a) internal view {
        assertEq(t.balanceOf(a.to), a.value, "payTo credited");
        assertTrue(t.authorizationState(a.from, a.nonce), "nonce used");
    }

    // ---------------------------------------------------------------- gas

    function test_Gas_TransferWithAuthorization_FreshRecipient() external {
        // Recipient never held tokens (balance slot 0 -> non-zero); token account and storage cold, as in a new tx.
        bytes memory data = _vrsCalldata(_auth(alice, address(0xF4E54), 1e6, NONCE));
        uint256 gasUsed = _measure(data);
        _logGas("transferWithAuthorization(v,r,s), fresh recipient", gasUsed, data, true);
        assertLt(gasUsed, 90_000, "fresh recipient");
    }

    function test_Gas_TransferWithAuthorization_FundedRecipient() external {
        // Recipient already holds tokens (balance slot non-zero -> non-zero); token account and storage cold.
        bytes memory data = _vrsCalldata(_auth(alice, bob, 1e6, NONCE));
        uint256 gasUsed = _measure(data);
        _logGas("transferWithAuthorization(v,r,s), funded recipient", gasUsed, data, true);
        assertLt(gasUsed, 70_000, "funded recipient");
    }

    function test_Gas_TransferWithAuthorization_WarmRecipient() external {
        // As in VouchProtocol.openPaidCall: balanceOf(recipient) is read first in the same tx, so the token account
        // and the (funded) recipient's balance slot are warm.
        bytes memory data = _vrsCalldata(_auth(alice, bob, 1e6, NONCE));
        token.balanceOf(bob);
        uint256 gasUsed = _measure(data);
        _logGas("transferWithAuthorization(v,r,s), warm funded recipient", gasUsed, data, false);
        assertLt(gasUsed, 65_000, "warm recipient");
    }

    function test_Gas_TransferWithAuthorization_Bytes_FreshRecipient() external {
        Authorization memory a = _auth(alice, address(0xF4E54), 1e6, NONCE);
        bytes memory data = abi.encodeWithSelector(
            SELECTOR_BYTES,
            a.from,
            a.to,
            a.value,
            a.validAfter,
            a.validBefore,
            a.nonce,
            _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a)
        );
        uint256 gasUsed = _measure(data);
        _logGas("transferWithAuthorization(bytes), fresh recipient", gasUsed, data, true);
        assertLt(gasUsed, 90_000, "fresh recipient, bytes");
    }

    function test_Gas_TransferWithAuthorization_Bytes_FundedRecipient() external {
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        bytes memory data = abi.encodeWithSelector(
            SELECTOR_BYTES,
            a.from,
            a.to,
            a.value,
            a.validAfter,
            a.validBefore,
            a.nonce,
            _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a)
        );
        uint256 gasUsed = _measure(data);
        _logGas("transferWithAuthorization(bytes), funded recipient", gasUsed, data, true);
        assertLt(gasUsed, 70_000, "funded recipient, bytes");
    }

    bytes4 internal constant SELECTOR_VRS = bytes4(
        keccak256("transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)")
    );
    bytes4 internal constant SELECTOR_BYTES =
        bytes4(keccak256("transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)"));

    /// @dev Calldata of the v, r, s overload for `a` signed by alice (the struct encodes as its six static fields).
    function _vrsCalldata(Authorization memory a) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = _sign(ALICE_KEY, TRANSFER_TYPEHASH, a);
        return abi.encodePacked(SELECTOR_VRS, abi.encode(a), abi.encode(v, r, s));
    }

    /// @dev Gas of one call to the token with `data` (which must succeed), measured with gasleft().
    function _measure(bytes memory data) internal returns (uint256 gasUsed) {
        address target = address(token);
        uint256 before = gasleft();
        (bool ok,) = target.call(data);
        gasUsed = before - gasleft();
        assertTrue(ok, "call succeeded");
    }

    /// @dev Logs the call gas and the whole-transaction estimate for a tx sent straight to the token:
    /// 21,000 + calldata (4/16 per zero/non-zero byte) + call gas, minus the 2,600 cold account access when the token
    /// account was cold in the measured call (a tx's target is warm).
    function _logGas(string memory what, uint256 callGas, bytes memory data, bool coldToken) internal {
        uint256 calldataGas;
        for (uint256 i; i < data.length; ++i) {
            calldataGas += data[i] == 0 ? 4 : 16;
        }
        emit log_named_uint(string.concat(what, ": call gas"), callGas);
        emit log_named_uint(
            string.concat(what, ": estimated tx gas"), 21_000 + calldataGas + callGas - (coldToken ? 2600 : 0)
        );
    }

    // ---------------------------------------------------------------- fuzz

    function testFuzz_TransferWithAuthorization_Amount(uint256 balance, uint256 value, bool vrs) external {
        balance = bound(balance, 0, type(uint256).max - token.totalSupply());
        uint256 payerKey = 0xDA7E;
        address payer = vm.addr(payerKey);
        vm.prank(owner);
        token.mint(payer, balance);
        Authorization memory a = _auth(payer, bob, value, NONCE);
        (uint8 v, bytes32 r, bytes32 s) = _sign(payerKey, TRANSFER_TYPEHASH, a);
        if (value > balance) {
            vm.expectRevert(
                abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, payer, balance, value)
            );
        }
        if (vrs) _transfer(a, v, r, s);
        else _transfer(a, abi.encodePacked(r, s, v));
        bool ok = value <= balance;
        assertEq(token.balanceOf(payer), ok ? balance - value : balance, "payer");
        assertEq(token.balanceOf(bob), ok ? INITIAL + value : INITIAL, "payee");
        assertEq(token.authorizationState(payer, NONCE), ok, "nonce used iff paid");
    }

    function testFuzz_TransferWithAuthorization_TimeWindow(uint256 validAfter, uint256 validBefore, uint256 when)
        external
    {
        when = bound(when, 1, type(uint64).max);
        // Draw the bounds near `when` half of the time so that every branch is exercised often.
        if (validAfter % 2 == 0) validAfter = bound(validAfter, when > 3 ? when - 3 : 0, when + 3);
        if (validBefore % 2 == 0) validBefore = bound(validBefore, when > 3 ? when - 3 : 0, when + 3);
        vm.warp(when);
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        (a.validAfter, a.validBefore) = (validAfter, validBefore);
        bytes memory sig = _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a);
        if (when <= validAfter) {
            vm.expectRevert(abi.encodeWithSelector(VouchUSD.AuthorizationNotYetValid.selector, validAfter, when));
        } else if (when >= validBefore) {
            vm.expectRevert(abi.encodeWithSelector(VouchUSD.AuthorizationExpired.selector, validBefore, when));
        }
        _transfer(a, sig);
        bool valid = validAfter < when && when < validBefore;
        assertEq(token.authorizationState(alice, NONCE), valid, "used iff inside the window");
        assertEq(token.balanceOf(bob), valid ? INITIAL + 1e6 : INITIAL, "payee");
    }

    function testFuzz_ReceiveWithAuthorization_Window(uint256 validAfter, uint256 validBefore, uint256 when) external {
        // Always inside the window: success.
        when = bound(when, 1, type(uint64).max);
        validAfter = bound(validAfter, 0, when - 1);
        validBefore = bound(validBefore, when + 1, type(uint256).max);
        vm.warp(when);
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        (a.validAfter, a.validBefore) = (validAfter, validBefore);
        (uint8 v, bytes32 r, bytes32 s) = _sign(ALICE_KEY, RECEIVE_TYPEHASH, a);
        vm.prank(bob);
        _receive(a, v, r, s);
        _assertMoved(a);
    }

    function testFuzz_RevertWhen_ReceiveWithAuthorization_CallerNotPayee(address caller, address payee) external {
        vm.assume(caller != payee);
        Authorization memory a = _auth(alice, payee, 1e6, NONCE);
        bytes memory sig = _signBytes(ALICE_KEY, RECEIVE_TYPEHASH, a);
        vm.expectRevert(abi.encodeWithSelector(VouchUSD.CallerMustBePayee.selector, caller, payee));
        vm.prank(caller);
        _receive(a, sig);
    }

    function testFuzz_RevertWhen_TransferWithAuthorization_WrongSigner(uint256 key, bool vrs) external {
        key = bound(key, 1, SECP256K1_N - 1);
        vm.assume(key != ALICE_KEY);
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        (uint8 v, bytes32 r, bytes32 s) = _sign(key, TRANSFER_TYPEHASH, a);
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        if (vrs) _transfer(a, v, r, s);
        else _transfer(a, abi.encodePacked(r, s, v));
    }

    function testFuzz_RevertWhen_TransferWithAuthorization_Tampered(address to, uint256 value, bytes32 nonce) external {
        Authorization memory a = _auth(alice, bob, 1e6, NONCE);
        bytes memory sig = _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a);
        Authorization memory t = _auth(alice, to, value, nonce);
        vm.assume(t.to != a.to || t.value != a.value || t.nonce != a.nonce);
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        _transfer(t, sig);
    }

    function testFuzz_AuthorizationState_PerAuthorizerAndNonce(bytes32 nonce, bytes32 otherNonce) external {
        vm.assume(nonce != otherNonce);
        Authorization memory a = _auth(alice, bob, 1e6, nonce);
        _transfer(a, _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a));
        assertTrue(token.authorizationState(alice, nonce), "used");
        assertFalse(token.authorizationState(alice, otherNonce), "other nonce");
        assertFalse(token.authorizationState(bob, nonce), "other authorizer");
        vm.expectRevert(abi.encodeWithSelector(VouchUSD.AuthorizationAlreadyUsed.selector, alice, nonce));
        _transfer(a, _signBytes(ALICE_KEY, TRANSFER_TYPEHASH, a));
    }

    function testFuzz_Permit(uint256 value, uint256 deadline) external {
        deadline = bound(deadline, START, type(uint256).max);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ALICE_KEY, _permitDigest(alice, bob, value, 0, deadline));
        token.permit(alice, bob, value, deadline, v, r, s);
        assertEq(token.allowance(alice, bob), value, "allowance");
    }

    // ---------------------------------------------------------------- helpers

    /// @dev EIP-712 domain separator computed from the standard type string.
    function _domainSeparator(string memory name, string memory version_, uint256 chainId, address verifyingContract)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256(bytes(name)), keccak256(bytes(version_)), chainId, verifyingContract)
        );
    }

    /// @dev `keccak256("\x19\x01" ‖ domainSeparator ‖ structHash)`.
    function _digest(bytes32 domainSeparator, bytes32 structHash) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator, structHash));
    }

    /// @dev Digest under the token's domain on the current chain, built independently.
    function _tokenDigest(bytes32 structHash) internal view returns (bytes32) {
        return _digest(_domainSeparator("Vouch USD", "1", block.chainid, address(token)), structHash);
    }

    function _structHash(bytes32 typeHash, Authorization memory a) internal pure returns (bytes32) {
        return keccak256(abi.encode(typeHash, a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce));
    }

    function _cancelStructHash(address authorizer, bytes32 nonce) internal pure returns (bytes32) {
        return keccak256(abi.encode(CANCEL_TYPEHASH, authorizer, nonce));
    }

    function _permitDigest(address holder, address spender, uint256 value, uint256 nonce, uint256 deadline)
        internal
        view
        returns (bytes32)
    {
        return _tokenDigest(keccak256(abi.encode(PERMIT_TYPEHASH, holder, spender, value, nonce, deadline)));
    }

    /// @dev An authorization valid from now (validAfter 0) for one hour.
    function _auth(address from, address to, uint256 value, bytes32 nonce)
        internal
        view
        returns (Authorization memory)
    {
        return Authorization({
            from: from, to: to, value: value, validAfter: 0, validBefore: block.timestamp + 1 hours, nonce: nonce
        });
    }

    function _copy(Authorization memory a) internal pure returns (Authorization memory) {
        return Authorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce);
    }

    function _sign(uint256 key, bytes32 typeHash, Authorization memory a)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        return vm.sign(key, _tokenDigest(_structHash(typeHash, a)));
    }

    /// @dev 65-byte r‖s‖v signature.
    function _signBytes(uint256 key, bytes32 typeHash, Authorization memory a) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = _sign(key, typeHash, a);
        return abi.encodePacked(r, s, v);
    }

    function _signCancelBytes(uint256 key, address authorizer, bytes32 nonce) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, _tokenDigest(_cancelStructHash(authorizer, nonce)));
        return abi.encodePacked(r, s, v);
    }

    function _transfer(Authorization memory a, uint8 v, bytes32 r, bytes32 s) internal {
        token.transferWithAuthorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, v, r, s);
    }

    function _transfer(Authorization memory a, bytes memory sig) internal {
        IERC3009(address(token))
            .transferWithAuthorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, sig);
    }

    function _receive(Authorization memory a, uint8 v, bytes32 r, bytes32 s) internal {
        token.receiveWithAuthorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, v, r, s);
    }

    function _receive(Authorization memory a, bytes memory sig) internal {
        IERC3009(address(token))
            .receiveWithAuthorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, sig);
    }

    /// @dev Expects AuthorizationUsed then Transfer from the token, in that order.
    function _expectUsed(Authorization memory a) internal {
        vm.expectEmit(address(token));
        emit AuthorizationUsed(a.from, a.nonce);
        vm.expectEmit(address(token));
        emit Transfer(a.from, a.to, a.value);
    }

    /// @dev `a` was executed from a funded (INITIAL) payer to a funded (INITIAL) payee.
    function _assertMoved(Authorization memory a) internal view {
        assertEq(token.balanceOf(a.from), INITIAL - a.value, "payer debited");
        assertEq(token.balanceOf(a.to), INITIAL + a.value, "payee credited");
        assertTrue(token.authorizationState(a.from, a.nonce), "nonce used");
        assertEq(token.totalSupply(), 3 * INITIAL, "supply unchanged");
    }
}
