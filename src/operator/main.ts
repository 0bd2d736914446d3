// The operator page's entry (operator.html): mounts the Svelte app. A second Vite entry beside the miner's page.
import { mount } from 'svelte';
import OperatorApp from './OperatorApp.svelte';

const target = document.getElementById('operator');
if (!target) throw new Error('operator.html has no #operator element');
mount(OperatorApp, { target });
